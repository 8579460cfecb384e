"""Marching in time (pinn_sine.march): the piecewise network, the windows' hand-off, a
kill anywhere resuming bit for bit, marching beating one window on a seeded heat case,
the command line's --windows, and the errors."""
import json
import math

import pytest
import torch

from pinn_sine import MarchResult, march
from pinn_sine.callbacks import Callback
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.derivatives.autograd import autograd_jet
from pinn_sine.derivatives.forward import forward_jet
from pinn_sine.marching import window_checkpoint, window_edges
from pinn_sine.nets import MLP, Sine, net_from_config
from pinn_sine.nets.piecewise import PiecewiseInTime
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import Poisson2D, Wave1D, Wave2D
from pinn_sine.runs import load_net
from pinn_sine.train import TrainingInterrupted

VOLATILE = ("time", "step_time")  # wall-clock columns: everything else must match bit for bit


def _net(seed=0, in_dim=2, width=12):
    return MLP(in_dim, 1, width, 2, activation=Sine(30.0), first_omega=3.0, seed=seed).double()


def _stages():
    return [Adam(6, lr=1e-3), GaussNewton(4, batch=64, resample_every=2)]


def _march(**kw):
    args = dict(windows=2, stages=_stages(), batch=64, seed=3, progress=False, log_every=1, eval_every=2)
    args.update(kw)
    return march(Wave1D(), _net(), **args)


def _strip(history):
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


# ----- the piecewise network --------------------------------------------------------------
def test_piecewise_picks_each_window_and_an_inner_edge_belongs_to_the_later_window():
    a, b = _net(0), _net(1)
    pw = PiecewiseInTime([a, b], [0.0, 0.5, 1.0])
    x = torch.tensor([[0.0, 0.3], [0.49, 0.3], [0.5, 0.3], [1.0, 0.3], [-0.1, 0.2], [1.2, 0.2]], dtype=torch.float64)
    out = pw(x)
    expected = torch.cat([a(x[:2]), b(x[2:4]), a(x[4:5]), b(x[5:])])
    assert torch.equal(out, expected)
    assert pw.window_of(x[:, 0]).tolist() == [0, 0, 1, 1, 0, 1]


def test_piecewise_jet_equals_autograd_in_float64():
    pw = PiecewiseInTime([_net(0), _net(1), _net(2)], [0.0, 0.3, 0.6, 1.0])
    x = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    spec = DerivativeSpec(first=("t", "x"), second=(("t", "t"), ("x", "x"), ("t", "x")))
    jet = forward_jet(pw, x, ("t", "x"), spec)
    ref = autograd_jet(pw, x, ("t", "x"), spec)
    assert torch.allclose(jet.u, ref.u, rtol=0, atol=1e-12)
    for name in ("t", "x"):
        assert torch.allclose(jet.d(name), ref.d(name), rtol=1e-10, atol=1e-10)
    for pair in (("t", "t"), ("x", "x"), ("t", "x")):
        assert torch.allclose(jet.d2(*pair), ref.d2(*pair), rtol=1e-10, atol=1e-8)


def test_piecewise_config_rebuilds_it():
    pw = PiecewiseInTime([_net(0), _net(1)], [0.0, 0.25, 1.0])
    again = net_from_config(json.loads(json.dumps(pw.config))).double()
    again.load_state_dict(pw.state_dict())
    x = torch.rand(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert isinstance(again, PiecewiseInTime) and again.edges == pw.edges
    assert torch.equal(again(x), pw(x))


def test_piecewise_errors():
    with pytest.raises(ValueError, match="2 networks for 1 windows"):
        PiecewiseInTime([_net(0), _net(1)], [0.0, 1.0])
    with pytest.raises(ValueError, match="must increase strictly"):
        PiecewiseInTime([_net(0), _net(1)], [0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="same in_dim and out_dim"):
        PiecewiseInTime([_net(0), _net(1, in_dim=3)], [0.0, 0.5, 1.0])
    pw = PiecewiseInTime([_net(0)], [0.0, 1.0])
    with pytest.raises(ValueError, match="no single layer trace"):
        forward_jet(pw, torch.zeros(2, 2, dtype=torch.float64), ("t", "x"), DerivativeSpec(first=("t",)), trace=[])


# ----- windows ------------------------------------------------------------------------
def test_window_edges_equal_and_given():
    p = Wave1D()
    assert window_edges(p, 4) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert window_edges(p, edges=[0.0, 0.1, 1.0]) == (0.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="must start at t = 0 and end at t = 1"):
        window_edges(p, edges=[0.0, 0.5])
    with pytest.raises(ValueError, match="not both"):
        window_edges(p, 2, edges=[0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"windows must be an integer in \[1, 1000\]"):
        window_edges(p, 0)
    with pytest.raises(ValueError, match="first input is 't'"):
        window_edges(Poisson2D(), 2)


def test_window_edges_that_grow():
    p = Wave1D()
    edges = window_edges(p, 3, growth=2.0)  # lengths 1/7, 2/7, 4/7
    assert edges[0] == 0.0 and edges[-1] == 1.0
    assert [b - a for a, b in zip(edges, edges[1:])] == pytest.approx([1 / 7, 2 / 7, 4 / 7], rel=1e-14)
    assert window_edges(p, 4, growth=1.0) == window_edges(p, 4)
    shrinking = window_edges(p, 3, growth=0.5)
    assert [b - a for a, b in zip(shrinking, shrinking[1:])] == pytest.approx([4 / 7, 2 / 7, 1 / 7], rel=1e-14)
    with pytest.raises(ValueError, match=r"growth must be a number in \[0.01, 100\]"):
        window_edges(p, 3, growth=0.0)
    with pytest.raises(ValueError, match="are the cut already"):
        window_edges(p, edges=[0.0, 0.5, 1.0], growth=2.0)


def test_a_window_repeats_the_problem_on_its_interval():
    p = Wave2D(boundary="absorbing", pulse_fraction=0.1)
    w = p.window(0.1, 0.2, _data_at(p, 0.1))
    assert w.bounds[0] == (0.1, 0.2) and w.boundary == "absorbing" and w.pulse_fraction == 0.1
    assert w.snapshot_times[0] == pytest.approx(0.1) and w.snapshot_times[-1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="is a window already"):
        w.window(0.1, 0.15)
    with pytest.raises(ValueError, match="not inside"):
        p.window(0.2, 0.5)


def _data_at(problem, t):
    from pinn_sine.problems.windows import InitialData

    return InitialData.from_network(MLP(3, 1, 8, 1, seed=0).double(), problem, t)


def test_march_hands_each_window_the_previous_networks_value_and_velocity():
    result = _march()
    assert isinstance(result, MarchResult) and isinstance(result.net, PiecewiseInTime)
    assert result.edges == (0.0, 0.5, 1.0) and len(result.windows) == 2
    first, second = result.net.nets
    s = torch.linspace(0.0, 1.0, 11, dtype=torch.float64).reshape(-1, 1)
    pts = torch.cat([torch.full_like(s, 0.5), s], dim=1)
    jet = forward_jet(first, pts, ("t", "x"), DerivativeSpec(first=("t",)))
    u, v = result.problems[1].initial.at(s)
    assert torch.allclose(u, jet.u, rtol=0, atol=1e-12) and torch.allclose(v, jet.d("t"), rtol=0, atol=1e-12)
    # the merged history: windows in order, steps counted over both
    assert [r["window"] for r in result.history][0] == 0 and result.history[-1]["window"] == 1
    assert result.history[-1]["step"] == result.steps_done == 20
    assert result.stop_reason == "completed"


def test_warm_start_copies_the_previous_window_and_leaves_the_given_net_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = march(Wave1D(), net, windows=2, stages=[Adam(3, lr=1e-3)], batch=32, progress=False)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    cold = march(Wave1D(), net, windows=2, stages=[Adam(3, lr=1e-3)], later_stages=[Adam(0)], batch=32,
                 progress=False, warm_start=False)
    # zero steps in window 2: a cold window is the given net, a warm one window 1's
    assert all(torch.equal(before[k], v) for k, v in cold.net.nets[1].state_dict().items())
    warm = march(Wave1D(), net, windows=2, stages=[Adam(3, lr=1e-3)], later_stages=[Adam(0)], batch=32,
                 progress=False)
    assert all(torch.equal(warm.net.nets[0].state_dict()[k], v) for k, v in warm.net.nets[1].state_dict().items())
    assert result.steps_done == 6


class _StopAt(Callback):
    """Ctrl-C after ``step`` steps of the window starting at ``t_start``."""

    def __init__(self, t_start, step):
        self.t_start, self.step = t_start, step

    def on_step_end(self, loop, stage, result, row):
        if self.t_start is not None and loop.context.problem.bounds[0][0] == self.t_start \
                and loop.global_step == self.step:
            loop.interrupt()


@pytest.mark.parametrize("where", ["window 1", "window 2", "between windows"])
def test_a_march_killed_anywhere_resumes_bit_for_bit(tmp_path, where):
    whole = _march(checkpoint=tmp_path / "a" / "ck.pt", callbacks=[_StopAt(None, 0)])
    ck = tmp_path / "b" / "ck.pt"
    stop = _StopAt(0.0, 4) if where == "window 1" else _StopAt(0.5, 7)
    with pytest.raises(TrainingInterrupted) as info:
        _march(checkpoint=ck, callbacks=[stop])
    assert isinstance(info.value.result, MarchResult)
    if where == "between windows":  # killed after window 1 was recorded, before window 2 wrote anything
        window_checkpoint(ck, 1).unlink()
    stop.t_start = None
    resumed = _march(checkpoint=ck, resume=ck, callbacks=[stop])
    for a, b in zip(whole.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    assert _strip(resumed.history) == _strip(whole.history)
    # the march checkpoint is a checkpoint of the usual format holding the piecewise network
    net = load_net(ck)
    x = torch.rand(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert isinstance(net, PiecewiseInTime) and torch.equal(net(x), whole.net(x))


def test_resuming_with_other_windows_is_refused(tmp_path):
    ck = tmp_path / "ck.pt"
    _march(checkpoint=ck)
    from pinn_sine.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="was written by a march over the windows"):
        _march(windows=3, checkpoint=ck, resume=ck)


def test_march_errors():
    with pytest.raises(NotImplementedError, match="cannot be marched in time"):
        march(Poisson2D(), MLP(2, 1, 8, 1), windows=2, stages=[Adam(1)], progress=False)
    hard = Wave1D(constraint="hard")
    with pytest.raises(ValueError, match="a hard-constrained window cannot start from the previous window's network"):
        march(hard, hard.constrain(_net()), windows=2, stages=[Adam(1)], progress=False)
    with pytest.raises(TypeError, match="stages must be a non-empty list"):
        march(Wave1D(), _net(), windows=2, stages=[], progress=False)
    with pytest.raises(ValueError, match="time_limit must be > 0"):
        march(Wave1D(), _net(), windows=2, stages=[Adam(1)], time_limit=0, progress=False)
    with pytest.raises(ValueError, match="inverse problem"):
        p = Wave1D()
        p.declare_unknown("c", 1.5)
        march(p, _net(), windows=2, stages=[Adam(1)], progress=False)


def test_each_window_is_evaluated_against_its_reference_and_the_whole_run_against_the_exact_solution():
    p = Wave1D(time_resolution=21)
    ref = p.reference(17)
    result = march(p, _net(), windows=2, stages=[Adam(4, lr=1e-3)], reference=ref, batch=32, progress=False,
                   eval_every=2)
    rows = result.window_table()
    assert [r["t_start"] for r in rows] == [0.0, 0.5] and all(r["rel_l2"] is not None for r in rows)
    assert all("rel_l2" in r for r in result.history if r["step"] in (2, 4, 6, 8))
    # window 2's data come from a network (no exact solution of its own): it logs the whole problem's
    later = [r for r in result.windows[1].history if "rel_l2" in r]
    assert later and all(0 < r["rel_l2_exact"] < 10 for r in later)
    from pinn_sine.validation.evaluate import evaluate, exact_on_grid

    again = evaluate(result.net, ref, exact=exact_on_grid(p.exact, ref))
    assert result.final["rel_l2_exact"] == pytest.approx(again["rel_l2_exact"], rel=1e-12)


def test_check_problem_checks_a_windows_bounds_and_params(heat1d):
    from pinn_sine.problems import check_problem
    from pinn_sine.problems.conformance import ConformanceError

    assert "window" in check_problem(heat1d.Heat1D(), resolution=9)

    class Unshifted(heat1d.Heat1D):
        def window(self, t_start, t_end, initial=None):
            return Unshifted(self.nu, t_max=t_end)  # forgets the start

    with pytest.raises(ConformanceError, match=r"window\(0.5, 1, ...\) has bounds"):
        check_problem(Unshifted(), resolution=9)


# ----- marching buys accuracy -----------------------------------------------------------
def test_two_heat_windows_beat_one_at_equal_steps(heat1d):
    """Heat on [0, 4] (nu = 0.1), the same SIREN and 400 Adam + 300 Gauss-Newton steps in
    all: one network over [0, 4] against two windows of 200 + 150. Measured: 6.9e-5 for one
    window, 2.2e-5 for two (exact solution, 33^2 grid)."""
    problem = heat1d.Heat1D(0.1, t_max=4.0)
    ref = problem.reference(33)
    errors = {}
    for k in (1, 2):
        net = MLP(2, 1, 16, 2, activation=Sine(), first_omega=2.0, seed=0).double()
        result = march(problem, net, windows=k, stages=[Adam(400 // k, lr=1e-3), GaussNewton(300 // k, batch=256)],
                       reference=ref, batch=256, progress=False, stall=None)
        errors[k] = result.final["rel_l2_exact"]
    assert errors[2] < 0.6 * errors[1], errors


# ----- the command line -----------------------------------------------------------------
def test_cli_solve_with_windows_writes_a_piecewise_run_that_loads_and_resumes(tmp_path, capsys):
    from pinn_sine.cli import main
    from pinn_sine.runs import load_run

    out = tmp_path / "run"
    argv = ["solve", "wave1d", "--windows", "2", "--width", "12", "--depth", "2", "--steps", "4", "--batch", "32",
            "--dtype", "float64", "--resolution", "17", "--time-resolution", "21", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "window 1/2 [0, 0.5]" in text and "window 2/2 [0.5, 1]" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert [w["window"] for w in metrics["windows"]] == [0, 1] and math.isfinite(metrics["rel_l2"])
    run = load_run(out)
    assert isinstance(run.net, PiecewiseInTime) and run.net.edges == (0.0, 0.5, 1.0)
    assert (out / "checkpoint.window0.pt").exists() and (out / "checkpoint.window1.pt").exists()
    # a finished march resumed: its windows are done (a later window's data come from the earlier
    # ones, so none is trained further); the same result is written again
    assert main(["solve", "--resume", str(out), "--quiet"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["steps_done"] == 8 and again["rel_l2"] == metrics["rel_l2"]
