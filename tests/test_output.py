"""What a person reads: progress lines in a log file, the compare narration, export."""
import builtins

import numpy as np
import pytest
import torch

from pinn_sine.cli import main
from pinn_sine.nets import MLP, Sine
from pinn_sine.optim import Adam
from pinn_sine.problems import Poisson2D
from pinn_sine.train import train
from pinn_sine.validation.store import load_reference

meshio = pytest.importorskip("meshio")


@pytest.fixture(scope="module")
def poisson_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "poisson"
    main(["solve", "poisson2d", "--steps", "3", "--width", "8", "--depth", "1", "--resolution", "17",
          "--out", str(out), "--quiet"])
    return out


# ----- progress ----------------------------------------------------------------------------
def test_progress_in_a_log_file_is_plain_lines(capsys):
    problem = Poisson2D()
    torch.manual_seed(0)
    net = MLP(2, 1, 8, 1, activation=Sine(), first_omega=2.0, seed=0)
    train(problem, net, stages=[Adam(20), Adam(10)], batch=32, seed=0, log_every=2, eval_every=10,
          reference=problem.reference(resolution=17))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    first = [ln for ln in lines if ln.startswith("poisson2d adam:")]
    second = [ln for ln in lines if ln.startswith("poisson2d adam_2:")]
    # every 10% of the steps (at most) and the final line of each stage
    assert 2 <= len(first) <= 11 and 2 <= len(second) <= 11
    assert first[-1].startswith("poisson2d adam: 20/20 (100%)")
    assert second[-1].startswith("poisson2d adam_2: 10/10 (100%)")
    final = first[-1]
    assert "loss=" in final and "pde=" in final and "boundary=" in final
    # the error against the exact solution first, the reference's beside it
    assert final.index("err_exact=") < final.index("err_ref=")


def test_quiet_training_prints_nothing(capsys):
    problem = Poisson2D()
    net = MLP(2, 1, 8, 1, activation=Sine(), first_omega=2.0, seed=0)
    train(problem, net, steps=3, batch=16, progress=False)
    assert capsys.readouterr().err == ""


def test_compare_says_what_it_renders(tmp_path, capsys):
    main(["compare", "--problems", "poisson2d", "--activations", "tanh", "--steps", "2", "--width", "8",
          "--depth", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "compare: writing" in err and "results.csv" in err
    assert "compare: rendering the figures of the best poisson2d run (tanh, seed 0" in err


# ----- export ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["vtk", "xdmf"])
def test_export_writes_prediction_reference_and_error(poisson_run, fmt, tmp_path, capsys):
    target = tmp_path / f"fields.{fmt}"
    assert main(["export", str(poisson_run), "--format", fmt, "--out", str(target)]) == 0
    assert "wrote" in capsys.readouterr().out
    mesh = meshio.read(target)
    pred = load_reference(poisson_run / "prediction.h5")
    ref = Poisson2D().reference(resolution=17)
    assert mesh.points.shape == (17 * 17, 3)
    assert {"prediction_u", "reference_u", "error_u"} <= set(mesh.point_data)
    # points in C order of the (x, y) grid
    X, Y = np.meshgrid(ref.coords["x"], ref.coords["y"], indexing="ij")
    np.testing.assert_allclose(mesh.points[:, 0], X.ravel())
    np.testing.assert_allclose(mesh.points[:, 1], Y.ravel())
    np.testing.assert_allclose(mesh.point_data["prediction_u"].ravel(), pred.fields["u"].ravel(), rtol=1e-6)
    np.testing.assert_allclose(mesh.point_data["reference_u"].ravel(), ref.fields["u"].ravel(), rtol=1e-6)
    np.testing.assert_allclose(mesh.point_data["error_u"].ravel(), (pred.fields["u"] - ref.fields["u"]).ravel(),
                               rtol=1e-6, atol=1e-12)
    assert mesh.cells[0].type == "quad" and len(mesh.cells[0].data) == 16 * 16


def test_export_of_a_time_dependent_run_is_a_time_series(tmp_path):
    out = tmp_path / "wave"
    main(["solve", "wave1d", "--time-resolution", "5", "--steps", "2", "--width", "8", "--depth", "1",
          "--resolution", "9", "--out", str(out), "--quiet"])
    assert main(["export", str(out), "--format", "xdmf"]) == 0
    with meshio.xdmf.TimeSeriesReader(out / "wave1d_fields.xdmf") as reader:
        points, cells = reader.read_points_cells()
        assert reader.num_steps == 5 and points.shape == (9, 3) and cells[0].type == "line"
        t, data, _ = reader.read_data(4)
        assert t == pytest.approx(1.0) and data["error_u"].shape == (9,)
    assert main(["export", str(out), "--format", "vtk"]) == 0
    steps = sorted(out.glob("wave1d_fields_*.vtk"))
    assert len(steps) == 5
    assert meshio.read(steps[-1]).point_data["reference_u"].shape == (9,)


def test_export_refusals(poisson_run, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="holds no prediction.h5"):
        (tmp_path / "unfinished").mkdir()
        (tmp_path / "unfinished" / "config.json").write_text((poisson_run / "config.json").read_text())
        main(["export", str(tmp_path / "unfinished")])
    with pytest.raises(SystemExit, match="would replace the run's prediction.h5"):
        main(["export", str(poisson_run), "--format", "xdmf", "--out", str(poisson_run / "prediction.xdmf")])
    real_import = builtins.__import__

    def no_meshio(name, *args, **kwargs):
        if name == "meshio":
            raise ImportError("No module named 'meshio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_meshio)
    with pytest.raises(SystemExit, match=r"export: exporting needs meshio.*pip install meshio"):
        main(["export", str(poisson_run)])


# ----- figures -----------------------------------------------------------------------------
def test_loss_figure_names_the_stages_and_draws_against_wall_time(tmp_path):
    from pinn_sine.plots import _stage_spans, loss_curves

    history = [{"step": s, "phase": ph, "loss": 1.0 / s, "pde": 0.5 / s, "time": 0.1 * s}
               for s, ph in [(1, "adam"), (2, "adam"), (3, "lbfgs"), (4, "lbfgs"), (5, "adam"), (6, "adam")]]
    history[1]["rel_l2"] = 0.5
    history[1]["rel_l2_exact"] = 0.4
    spans = _stage_spans(history, np.array([h["step"] for h in history], float))
    assert [name for name, _, _ in spans] == ["adam", "lbfgs", "adam_2"]
    assert spans[1] == ("lbfgs", 2.0, 4.0)  # a stage's band starts where the one before ends
    for x in ("step", "time"):
        path = loss_curves(history, tmp_path / f"loss_{x}.png", title="t", x=x)
        assert path.stat().st_size > 0
    with pytest.raises(ValueError, match='x must be "step" or "time"'):
        loss_curves(history, tmp_path / "bad.png", x="seconds")


def test_error_vs_time_figure(tmp_path):
    from pinn_sine.plots import error_vs_time

    path = error_vs_time(np.linspace(0, 1, 5), [0.1, 0.2, float("nan"), 0.3, 0.4], tmp_path / "e.png", title="w")
    assert path.stat().st_size > 0


def test_progress_on_a_terminal_is_a_bar_that_stays(monkeypatch):
    import sys

    from pinn_sine.train import LogProgress, _progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = _progress(10, 0, True, "poisson2d adam")
    try:
        assert not isinstance(bar, LogProgress) and bar.leave and bar.desc == "poisson2d adam"
    finally:
        bar.close()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(_progress(10, 0, True, "x"), LogProgress)
