"""Stages by name: ``parse_stage_spec`` (good and bad specs), ``stage_from_description``
as the inverse of ``describe()`` for every stage, and ``pinn-sine solve --stage``: the
stages recorded in config.json, a resume that extends them, the refusals."""
from __future__ import annotations

import json
import re

import pytest

from pinn_sine.checkpoint import load_checkpoint
from pinn_sine.cli import main
from pinn_sine.optim import LBFGS, STAGES, Adam, GaussNewton, parse_stage_spec, stage_from_description
from pinn_sine.runs import load_run, read_config

TINY = ["--width", "8", "--depth", "1", "--batch", "32", "--resolution", "9", "--eval-every", "5", "--quiet"]

# (spec, the dict it parses to)
GOOD = [
    ("adam:steps=500", {"stage": "adam", "steps": 500}),
    ("adam", {"stage": "adam"}),
    ("adam:steps=1_000,lr=1e-3", {"stage": "adam", "steps": 1000, "lr": 1e-3}),
    ("adam:steps=5,lr=0.5,schedule=constant", {"stage": "adam", "steps": 5, "lr": 0.5, "schedule": "constant"}),
    ("adam:steps=5,betas=0.9/0.999", {"stage": "adam", "steps": 5, "betas": [0.9, 0.999]}),
    ("adam:steps=5,resample_every=fixed", {"stage": "adam", "steps": 5, "resample_every": "fixed"}),
    ("adam:steps=5,lr=none", {"stage": "adam", "steps": 5, "lr": None}),
    (" adam : steps = 5 , lr = 1e-2 ", {"stage": "adam", "steps": 5, "lr": 1e-2}),
    ("lbfgs:steps=10,batch=4096,chunk=5", {"stage": "lbfgs", "steps": 10, "batch": 4096, "chunk": 5}),
    ("l-bfgs:steps=10", {"stage": "lbfgs", "steps": 10}),
    ("gn:steps=3,damping=1e-2", {"stage": "gauss_newton", "steps": 3, "damping": 1e-2}),
    ("gauss_newton:steps=3,batch=none,line_search=true",
     {"stage": "gauss_newton", "steps": 3, "batch": None, "line_search": True}),
    ("gauss_newton:steps=3,line_search=False", {"stage": "gauss_newton", "steps": 3, "line_search": False}),
]


@pytest.mark.parametrize("text, expected", GOOD, ids=[g[0].strip() for g in GOOD])
def test_good_specs(text, expected):
    assert parse_stage_spec(text) == expected


def test_parts_collect_dotted_keys(monkeypatch):
    """A part (``descent=cg``) with its options (``descent.rank=100``) becomes one dict,
    "name" first; without dotted keys it stays a plain value. The keys are checked
    against the constructor's signature, so a stand-in class with those keywords is
    enough (GaussNewton's parts are being written)."""
    from pinn_sine.optim import spec

    class Parts(GaussNewton):
        name = "gauss_newton"

        def __init__(self, steps, *, batch=None, search=None, descent=None, solver=None):
            self.steps, self.batch, self.search, self.descent, self.solver = steps, batch, search, descent, solver

        def describe(self):
            return {"stage": self.name, "steps": self.steps, "batch": self.batch, "search": self.search,
                    "descent": self.descent, "solver": self.solver}

    monkeypatch.setattr(spec, "STAGES", {**spec.STAGES, "gauss_newton": Parts})
    assert parse_stage_spec("gauss_newton:steps=300,descent=cg,descent.rank=100") == \
        {"stage": "gauss_newton", "steps": 300, "descent": {"name": "cg", "rank": 100}}
    assert parse_stage_spec("gn:descent.rank=100,descent=cg,steps=3") == \
        {"stage": "gauss_newton", "descent": {"name": "cg", "rank": 100}, "steps": 3}
    assert parse_stage_spec("gn:steps=3,descent=cg") == {"stage": "gauss_newton", "steps": 3, "descent": "cg"}
    assert parse_stage_spec("gn:steps=3,search.damping=1e-2") == \
        {"stage": "gauss_newton", "steps": 3, "search": {"damping": 1e-2}}
    with pytest.raises(ValueError, match=r'"descent.name" is given twice'):
        parse_stage_spec("gn:steps=3,descent=cg,descent.name=dense")
    # nested dicts pass through to the constructor, and describe() reads back the same
    stage = stage_from_description(parse_stage_spec("gn:steps=3,descent=cg,descent.rank=7,solver=cholesky"))
    assert stage.descent == {"name": "cg", "rank": 7} and stage.solver == "cholesky"
    assert stage_from_description(json.loads(json.dumps(stage.describe()))).describe() == stage.describe()


FORM = r'Expected NAME\[:key=value,\.\.\.\], e\.g\. "adam:steps=500'
# (id, spec, message pattern)
BAD = [
    ("empty", "", r'stage "": no stage name before the settings\. ' + FORM),
    ("no-name", ":steps=3", r'stage ":steps=3": no stage name before the settings\. ' + FORM),
    ("unknown", "adamw:steps=3", r'stage "adamw:steps=3": Invalid stage "adamw"\. Did you mean "adam"\? Must be '
                                 r"one of \['adam', 'gauss_newton', 'gn', 'l-bfgs', 'lbfgs'\]"),
    ("unknown-far", "sgd:steps=3", r"Invalid stage \"sgd\"\. Must be one of \['adam'"),
    ("no-equals", "adam:steps", r'stage "adam:steps": the setting "steps" has no "="\. ' + FORM),
    ("no-value", "adam:steps=", r'the setting "steps=" has no value\. ' + FORM),
    ("empty-setting", "adam:steps=3,,lr=1e-3", r"an empty setting \(two commas, or one at an end\)\. " + FORM),
    ("trailing-comma", "adam:steps=3,", r"an empty setting"),
    ("duplicate", "adam:steps=3,steps=4", r'"steps" is given twice\. Give each setting once'),
    ("bad-key", "adam:steps=3,1lr=2", r'"1lr" is not a setting name'),
    ("unknown-key", "adam:steps=3,lrate=1e-3",
     r'unknown setting "lrate" of adam\. Did you mean "lr"\? Adam takes steps, lr, schedule, final_lr_factor, '
     r"betas, resample_every, fit_coefficients\."),
    ("unknown-key-lbfgs", "lbfgs:steps=3,damping=1",
     r'unknown setting "damping" of lbfgs\. LBFGS takes steps, batch, history_size, chunk'),
    ("unknown-part", "adam:steps=3,descent.rank=2", r'unknown setting "descent" of adam'),
    ("stage-key", "adam:stage=lbfgs", r'unknown setting "stage" of adam'),
    ("inf", "adam:steps=3,lr=inf", r'stage "adam:steps=3,lr=inf": lr=inf is not a finite number'),
    ("nan", "adam:steps=3,lr=nan", r"lr=nan is not a finite number"),
    ("inf-pair", "adam:steps=3,betas=0.9/inf", r"betas=0\.9/inf is not a pair of finite numbers"),
]


@pytest.mark.parametrize("text, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_specs(text, match):
    with pytest.raises(ValueError, match=match):
        parse_stage_spec(text)


# Every stage with several settings away from its defaults (GaussNewton: the keys it has
# today; its search/descent/solver parts are being written).
STAGE_CASES = [
    Adam(7, lr=2e-3, schedule="exponential", final_lr_factor=0.1, betas=(0.8, 0.99), resample_every="fixed"),
    Adam(0),
    LBFGS(12, batch=300, history_size=9, chunk=4, tolerance_grad=1e-9, tolerance_change=1e-11),
    GaussNewton(5, batch=200, damping=1e-2),
    GaussNewton(5),
]


@pytest.mark.parametrize("stage", STAGE_CASES, ids=repr)
def test_description_round_trip(stage):
    desc = stage.describe()
    assert type(stage_from_description(desc)) is type(stage)
    assert stage_from_description(desc).describe() == desc
    stored = json.loads(json.dumps(desc))  # as config.json holds it
    assert stage_from_description(stored).describe() == desc


def test_round_trip_keeps_restored_state():
    """Adam resumed with more steps keeps its schedule's length (``schedule_steps``):
    not a constructor argument, restored through ``resume_settings``."""
    stage = Adam(30, lr=1e-3)
    stage.resume_settings({"stage": "adam", "steps": 10})
    assert stage.describe()["schedule_steps"] == 10
    assert stage_from_description(stage.describe()).describe() == stage.describe()


def test_every_stage_is_in_the_registry():
    assert dict(STAGES) == {"adam": Adam, "lbfgs": LBFGS, "gauss_newton": GaussNewton}
    assert all(name == cls.name for name, cls in STAGES.items())
    with pytest.raises(TypeError):
        STAGES["sgd"] = Adam  # read-only


@pytest.mark.parametrize("desc, match", [
    ({"stage": "adam"}, r"stage adam needs steps, e\.g\. adam:steps=500"),
    ({"stage": "adam", "steps": 3, "warmup": 5}, r"stage adam: warmup=5 is no setting of Adam; it takes steps, lr"),
    ({"stage": "lbfgs", "steps": 3, "schedule_steps": 2}, r"schedule_steps=2 is no setting of LBFGS"),
    ({"stage": "adamw", "steps": 3}, r'Invalid stage "adamw"\. Did you mean "adam"\?'),
    ({"steps": 3}, r'a stage description is a dict with a "stage" name'),
    ({"stage": "adam", "steps": -1}, r"Adam: steps must be an integer >= 0"),
])
def test_bad_descriptions(desc, match):
    with pytest.raises(ValueError, match=match):
        stage_from_description(desc)


def test_cli_stages_recorded_and_resumed(tmp_path, capsys):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--stage", "adam:steps=20", "--stage", "lbfgs:steps=10,chunk=5", "--out", str(run),
          *TINY])
    config = read_config(run)
    assert config["stages"] == [Adam(20).describe(), LBFGS(10, chunk=5).describe()]
    assert config["options"]["stage"] == ["adam:steps=20", "lbfgs:steps=10,chunk=5"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps_done"] == 30 and (metrics["steps"], metrics["lbfgs_steps"], metrics["gn_steps"]) == (20, 10, 0)
    assert [s.describe() for s in load_run(run).stages()] == config["stages"]
    capsys.readouterr()

    # more steps for the L-BFGS stage; the Adam stage named alone keeps its settings
    main(["solve", "--resume", str(run), "--stage", "adam", "--stage", "lbfgs:steps=20"])
    assert "resumed from step 30" in capsys.readouterr().out
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 40
    assert read_config(run)["stages"] == [Adam(20).describe(), LBFGS(20, chunk=5).describe()]
    # without --stage, the run's stages come back from config.json; a stage may be added
    main(["solve", "--resume", str(run), "--stage", "adam:steps=20", "--stage", "lbfgs", "--stage", "adam:steps=5"])
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 45
    main(["solve", "--resume", str(run)])
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 45
    assert [d["stage"] for d in read_config(run)["stages"]] == ["adam", "lbfgs", "adam"]

    before = (run / "config.json").read_text()
    with pytest.raises(SystemExit, match=r"--resume .*run: a stage's settings cannot change when a run resumes, "
                                         r"only its steps: --stage lbfgs:steps=30,history_size=5: history_size=5 "
                                         r"\(the run's stage 2 has 50\)\. Start a new run"):
        main(["solve", "--resume", str(run), "--stage", "adam", "--stage", "lbfgs:steps=30,history_size=5"])
    with pytest.raises(SystemExit, match=r"--stage lbfgs:steps=30 is stage 1, which in the run is adam; a resumed "
                                         r"run keeps its stages in order"):
        main(["solve", "--resume", str(run), "--stage", "lbfgs:steps=30"])
    with pytest.raises(SystemExit, match=r"--steps: this run's stages were given with --stage .*cannot be mixed"):
        main(["solve", "--resume", str(run), "--steps", "100"])
    assert (run / "config.json").read_text() == before  # a refused resume leaves the config alone


def test_cli_config_rerun_and_stage_replacing(tmp_path):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--stage", "adam:steps=4,lr=2e-3,schedule=constant", "--out", str(run), *TINY])
    again = tmp_path / "again"
    main(["solve", "--config", str(run / "config.json"), "--out", str(again)])
    assert read_config(again)["stages"] == read_config(run)["stages"]
    assert json.loads((again / "metrics.json").read_text())["final_losses"] == \
        json.loads((run / "metrics.json").read_text())["final_losses"]
    other = tmp_path / "other"
    main(["solve", "--config", str(run / "config.json"), "--out", str(other), "--stage", "lbfgs:steps=3"])
    assert read_config(other)["stages"] == [LBFGS(3).describe()]


def test_cli_shorthand_run_resumed_with_stage(tmp_path):
    """A run made with --steps is extended with --stage: the stage is matched to the
    stored one, and a stage is added after it."""
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--steps", "4", "--out", str(run), *TINY])
    main(["solve", "--resume", str(run), "--stage", "adam:steps=6", "--stage", "lbfgs:steps=2"])
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 8
    assert [d["stage"] for d in read_config(run)["stages"]] == ["adam", "lbfgs"]


@pytest.mark.parametrize("argv, match", [
    (["--stage", "adam:steps=3", "--steps", "5"],
     r"^--steps: --stage gives the stages; --steps is the shorthand for the default stages and cannot be mixed "
     r"with it\. Put the settings into --stage, e\.g\. --stage adam:steps=2000,lr=1e-3"),
    (["--stage", "adam:steps=3", "--lbfgs-steps=5", "--gn-damping", "1e-2"],
     r"^--lbfgs-steps, --gn-damping: --stage gives the stages; .* are the shorthand"),
    (["--stage", "adam:lrate=3"], r'argument --stage: stage "adam:lrate=3": unknown setting "lrate" of adam\. '
                                  r'Did you mean "lr"\?'),
    (["--stage", "adamw:steps=3"], r'argument --stage: stage "adamw:steps=3": Invalid stage "adamw"'),
    (["--stage", "lbfgs"], r"^--stage lbfgs: stage lbfgs needs steps, e\.g\. lbfgs:steps=500\."),
    (["--stage", "adam:steps=1.5"], r"^--stage adam:steps=1\.5: Adam: steps must be an integer >= 0"),
])
def test_cli_stage_errors(argv, match, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["solve", "poisson2d", *argv, "--out", str(tmp_path / "r"), *TINY])
    message = info.value.code if isinstance(info.value.code, str) else capsys.readouterr().err
    assert info.value.code != 0 and message.strip().count("\n") == 0, message
    assert re.search(match, message), message
    assert not (tmp_path / "r").exists()


def test_stored_stage_specs_are_checked(tmp_path, capsys):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--stage", "adam:steps=2", "--out", str(run), *TINY])
    config = json.loads((run / "config.json").read_text())
    del config["digest"]
    config["options"]["stage"] = ["adam:stepz=2"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(config))
    with pytest.raises(SystemExit, match=r'--config .*edited\.json: stage: stage "adam:stepz=2": unknown setting '
                                         r'"stepz" of adam'):
        main(["solve", "--config", str(edited), "--out", str(tmp_path / "x")])
