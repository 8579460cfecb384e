"""Problem recipes (``Problem.recipe``: the measured ``pinn-sine solve`` set-up used where
the command line is silent) and ``--stall``."""
from __future__ import annotations

import json

import pytest

from pinn_sine.cli import apply_recipe, build_stages, build_stall, main, make_parser
from pinn_sine.problems import PROBLEMS, AllenCahn1D, Burgers1D, Poisson2D
from pinn_sine.stall import Stall


def parsed(*argv: str):
    """The solve arguments of ``argv`` with the recipe applied, and what it set."""
    argv = ["solve", *argv]
    args, extra = make_parser().parse_known_args(argv)
    args.argv = argv
    applied, problem = apply_recipe(args)
    return args, applied, problem


def test_a_silent_command_line_takes_the_whole_recipe():
    args, applied, problem = parsed("burgers1d")
    recipe = dict(Burgers1D.recipe)
    assert problem == recipe.pop("problem")
    assert applied == recipe
    assert (args.activation, args.width, args.depth, args.dtype, args.stall) == ("tanh", 20, 3, "float64", "off")
    stages = build_stages(args)
    assert [s.describe()["stage"] for s in stages] == ["adam", "gauss_newton"]
    gn = stages[1].describe()
    assert (gn["batch"], gn["resample_every"], gn["adaptive"]["name"]) == (2048, 25, "rad")


def test_what_the_command_line_gives_wins_and_any_stage_option_drops_the_recipes_stages():
    args, applied, _ = parsed("burgers1d", "--activation", "siren", "--width", "64", "--steps", "5")
    assert (args.activation, args.width) == ("siren", 64)
    assert args.depth == 3 and args.dtype == "float64"  # the rest of the recipe still applies
    assert "stage" not in applied and args.stage == []
    assert [s.describe()["stage"] for s in build_stages(args)] == ["adam"]
    for given in (["--gn-steps", "3"], ["--stage", "adam:steps=2"], ["--lr", "1e-4"]):
        args, applied, _ = parsed("allen-cahn1d", *given)
        assert "stage" not in applied, given
        assert args.constraint == "hard"


def test_the_recipes_ensemble_goes_with_its_stages():
    """Inpainting's recipe averages the last iterates of its Adam stage (--ensemble 6
    --ensemble-every 250): that belongs to its step count, so a stage option drops both."""
    args, applied, _ = parsed("inpainting")
    assert (args.ensemble, args.ensemble_every) == (6, 250) and applied["stage"] == ["adam:steps=12000"]
    assert [s.describe()["steps"] for s in build_stages(args)] == [12000]
    for given in (["--steps", "500"], ["--stage", "adam:steps=500"]):
        args, applied, _ = parsed("inpainting", *given)
        assert args.ensemble is None and args.ensemble_every is None and applied == {"stall": "off"}, given
    args, applied, _ = parsed("inpainting", "--ensemble", "3")  # given: the rest of the recipe with it
    assert (args.ensemble, args.ensemble_every) == (3, 250) and "ensemble" not in applied


def test_no_recipe_and_problems_without_one_keep_the_plain_defaults():
    plain, _ = make_parser().parse_known_args(["solve", "burgers1d"])
    args, applied, problem = parsed("burgers1d", "--no-recipe")
    assert applied == {} and problem == {}
    assert (args.activation, args.width, args.dtype, args.stall) == (plain.activation, plain.width, "float32",
                                                                     "default")
    assert Poisson2D.recipe == {}
    assert parsed("poisson2d")[1:] == ({}, {})


@pytest.mark.parametrize("name", sorted(n for n, cls in PROBLEMS.items() if cls.recipe))
def test_every_recipe_names_solve_options_and_builds_its_stages(name):
    args, applied, problem = parsed(name)
    cls = PROBLEMS[name]
    assert set(applied) | ({"problem"} if problem else set()) == set(cls.recipe)
    build_stages(args)
    build_stall(args.stall)
    cls(**problem)  # the problem options are the constructor's


def test_a_recipe_naming_no_solve_option_is_refused(monkeypatch):
    monkeypatch.setattr(AllenCahn1D, "recipe", {"widht": 32})
    with pytest.raises(SystemExit, match=r"AllenCahn1D.recipe: \['widht'\] is no solve option"):
        parsed("allen-cahn1d")


def test_stall_values():
    assert build_stall("off") is None and build_stall("none") is None
    assert build_stall("default") == Stall()
    assert build_stall("0.2:1e-6") == Stall(window=0.2, rtol=1e-6)
    assert build_stall("500") == Stall(window=500)
    with pytest.raises(ValueError, match=r"expected off, default or WINDOW\[:RTOL\]"):
        build_stall("sometimes")
    with pytest.raises(ValueError, match=r"Stall: window must be"):
        build_stall("2.5")


def test_bad_stall_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "poisson2d", "--stall", "0:1"])
    assert "argument --stall: Stall: window must be" in capsys.readouterr().err


def test_a_recipe_run_records_what_it_used_and_its_config_reruns_it(tmp_path, capsys):
    run = tmp_path / "run"
    main(["solve", "burgers1d", "--stage", "adam:steps=3", "--batch", "32", "--resolution", "17", "--quiet",
          "--out", str(run)])
    out = capsys.readouterr().out
    assert "burgers1d's recipe (measured; --no-recipe for the plain defaults): --activation tanh --width 20" in out
    assert "--stage" not in out.split("recipe")[1].splitlines()[0]  # --stage given: not the recipe's stages
    config = json.loads((run / "config.json").read_text())
    assert config["problem"]["options"] == {"initial_fraction": 0.125, "boundary_fraction": 0.125}
    assert (config["options"]["activation"], config["options"]["stall"], config["options"]["dtype"]) == \
        ("tanh", "off", "float64")
    assert config["options"]["stage"] == ["adam:steps=3"]
    assert json.loads((run / "metrics.json").read_text())["steps_done"] == 3
    again = tmp_path / "again"
    main(["solve", "--config", str(run / "config.json"), "--out", str(again)])
    assert "recipe (measured" not in capsys.readouterr().out  # the stored run's options, not the recipe again
    rerun = json.loads((again / "config.json").read_text())
    assert rerun["problem"]["options"] == config["problem"]["options"]
    assert {k: rerun["options"][k] for k in ("activation", "stall", "dtype", "stage")} == \
        {k: config["options"][k] for k in ("activation", "stall", "dtype", "stage")}


def test_problems_lists_each_recipe(capsys):
    assert main(["problems"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("burgers1d: Burgers1D"):out.index("allen-cahn1d: ")]
    flat = " ".join(block.split())
    assert "recipe (what solve uses where the command line is silent; --no-recipe): --activation tanh --width 20" \
        in flat and "--stage adam:steps=1000 --stage gauss_newton:steps=4000" in flat
    assert "--initial-fraction 0.125" in flat
