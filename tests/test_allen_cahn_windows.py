"""Allen-Cahn time windows: soft and hard-constrained windows from a previous window's
network (NetworkField), the hand-off, jets through a chain of windows, a hard march killed
in window 2 resuming bit for bit, and loading a hard march back."""
import pytest
import torch

from pinn_sine import march
from pinn_sine.checkpoint import CheckpointError
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.derivatives.autograd import autograd_jet
from pinn_sine.derivatives.forward import forward_jet
from pinn_sine.nets import build_net
from pinn_sine.nets.piecewise import PiecewiseInTime
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import AllenCahn1D, check_problem
from pinn_sine.problems.allen_cahn import initial_value
from pinn_sine.problems.windows import InitialData, NetworkField
from pinn_sine.runs import load_net
from pinn_sine.train import TrainingInterrupted
from test_marching import _StopAt  # Ctrl-C in the window starting at a given time

SPEC = DerivativeSpec(first=("t",), second=(("x", "x"),))


def _net(problem, seed=0):
    return build_net(problem, "siren", width=12, depth=2, seed=seed).double()


def _points(lo, hi, n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = lo + (hi - lo) * torch.rand(n, 1, generator=g, dtype=torch.float64)
    return torch.cat([t, 2 * torch.rand(n, 1, generator=g, dtype=torch.float64) - 1], dim=1)


def _march(problem, **kw):
    args = dict(windows=3, stages=[Adam(4, lr=1e-3), GaussNewton(3, batch=64, resample_every=2)], batch=64, seed=2,
                progress=False, log_every=1, eval_every=2, stall=None)
    args.update(kw)
    return march(problem, _net(problem), **args)


def test_a_window_takes_its_start_and_data():
    whole = AllenCahn1D()
    first = whole.window(0.0, 0.25)
    assert first.bounds[0] == (0.0, 0.25) and first.initial is None
    net = _net(whole)
    data = InitialData.from_network(net, first, 0.25)
    second = whole.window(0.25, 0.5, data)
    batch = second.sample(64, torch.Generator().manual_seed(0))
    assert torch.all(batch["initial"][:, 0] == 0.25) and batch["interior"][:, 0].min() >= 0.25
    assert second.params()["t_start"] == 0.25 and second.params()["initial"]["sha256"] == data.digest
    # the reference is the whole problem's on the window's times, keyed without the data
    assert "initial" not in second.reference_params(9) and second.reference_params(9)["t_start"] == 0.25
    ref, part = whole.reference(9), second.reference(9)
    assert part.coords["t"][0] == 0.25 and part.coords["t"][-1] == 0.5
    # the soft initial residual reads the network's value at t_k
    x = batch["initial"][:, 1:2].double()
    assert torch.allclose(data.at(x)[0], net(torch.cat([torch.full_like(x, 0.25), x], 1)), atol=1e-15, rtol=0)
    assert "window" in check_problem(AllenCahn1D())


def test_bad_windows():
    with pytest.raises(ValueError, match="t_start=0.5 > 0 needs initial data"):
        AllenCahn1D(t_start=0.5)
    with pytest.raises(ValueError, match=r"t_start must be in \[0, t_max\)"):
        AllenCahn1D(t_start=1.0, initial=InitialData(initial_value))
    with pytest.raises(ValueError, match="give t_start=0.25"):
        AllenCahn1D(t_start=0.5, initial=InitialData(initial_value, time=0.25))
    with pytest.raises(ValueError, match="a window already"):
        AllenCahn1D().window(0.5, 1.0, InitialData(initial_value)).window(0.5, 0.75)
    other = AllenCahn1D(eps=2e-4)
    data = InitialData.from_network(_net(other), other, 0.5)
    with pytest.raises(ValueError, match="initial comes from a allen-cahn1d with eps=0.0002"):
        AllenCahn1D().window(0.5, 1.0, data)


def test_network_field_gives_the_frozen_networks_value_and_x_derivatives():
    whole = AllenCahn1D(constraint="hard")
    first = whole.window(0.0, 0.5)
    f = first.constrain(_net(whole))
    field = NetworkField(InitialData.from_network(f, first, 0.5), whole.input_names)
    x = _points(0.5, 1.0)
    value, d1, d2 = field.evaluate(x, (0, 1), ((1, 1), (0, 1)))
    at_tk = torch.cat([torch.full_like(x[:, :1], 0.5), x[:, 1:]], 1)
    ref = autograd_jet(f, at_tk, whole.input_names, DerivativeSpec(first=("x",), second=(("x", "x"),)))
    assert torch.allclose(value, ref.u, atol=1e-14, rtol=0)
    assert torch.allclose(d1[1], ref.d("x"), atol=1e-12, rtol=0)
    assert torch.allclose(d2[(1, 1)], ref.d2("x", "x"), atol=1e-10, rtol=0)
    assert torch.all(d1[0] == 0) and torch.all(d2[(0, 1)] == 0)
    assert torch.allclose(field.value(x), value, atol=1e-14, rtol=0)  # the forward pass, differentiable in x


def test_a_hard_march_hands_off_exactly_and_its_jets_are_exact():
    problem = AllenCahn1D(constraint="hard")
    result = _march(problem)
    edges = result.edges
    x = torch.linspace(-1, 1, 9, dtype=torch.float64).reshape(-1, 1)
    for k in (1, 2):  # u(t_k) of window k is window k-1's, to rounding
        at = torch.cat([torch.full_like(x, edges[k]), x], 1)
        assert torch.allclose(result.net.nets[k](at), result.net.nets[k - 1](at), atol=1e-14, rtol=0)
    # window 3's jet runs through the two frozen windows before it
    pts = _points(edges[2], edges[3])
    jet = forward_jet(result.net.nets[2], pts, problem.input_names, SPEC)
    ref = autograd_jet(result.net.nets[2], pts, problem.input_names, SPEC)
    assert torch.allclose(jet.u, ref.u, atol=1e-13, rtol=0)
    assert torch.allclose(jet.d("t"), ref.d("t"), atol=1e-11, rtol=0)
    assert torch.allclose(jet.d2("x", "x"), ref.d2("x", "x"), atol=1e-9, rtol=0)


def test_a_hard_march_killed_in_window_2_resumes_bit_for_bit_and_loads(tmp_path):
    problem = AllenCahn1D(constraint="hard")
    whole = _march(problem, checkpoint=tmp_path / "a" / "ck.pt")
    ck = tmp_path / "b" / "ck.pt"
    stop = _StopAt(1 / 3, 3)
    with pytest.raises(TrainingInterrupted):
        _march(problem, checkpoint=ck, callbacks=[stop])
    stop.t_start = None
    resumed = _march(problem, checkpoint=ck, resume=ck, callbacks=[stop])
    for a, b in zip(whole.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    x = _points(0.0, 1.0, seed=4)
    with pytest.raises(CheckpointError, match="hard-constrained march of allen-cahn1d; pass problem="):
        load_net(tmp_path / "a" / "ck.pt")
    loaded = load_net(tmp_path / "a" / "ck.pt", problem)
    assert isinstance(loaded, PiecewiseInTime) and torch.equal(loaded(x), whole.net(x))


def test_cli_marches_allen_cahn_hard_with_growing_windows_and_loads_it(tmp_path, capsys):
    from pinn_sine.cli import main
    from pinn_sine.runs import load_run

    out = tmp_path / "run"
    assert main(["solve", "allen-cahn1d", "--windows", "2", "--window-growth", "3", "--width", "12", "--depth", "2",
                 "--stage", "adam:steps=3", "--stage", "gn:steps=2,batch=64", "--batch", "64", "--resolution", "17",
                 "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hard constraint (initial exact)" in text and "window 2/2 [0.25, 1]" in text
    run = load_run(out)
    assert isinstance(run.net, PiecewiseInTime) and run.net.edges == pytest.approx((0.0, 0.25, 1.0), abs=1e-15)
    assert run.config["options"]["window_growth"] == 3.0
    x = _points(0.0, 1.0, seed=5)
    with torch.no_grad():
        assert torch.isfinite(run.net(x)).all()
