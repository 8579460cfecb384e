"""The periodic input encoding (pinn_sine.nets.PeriodicEncoding): exact periodicity of
every network built on it, its closed-form jet against autograd through every engine,
the Gauss-Newton Jacobian through it, config round trips, build_net's periodicity rule,
the errors, and ``pinn-sine solve --periodic``. Float64 throughout."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from pinn_sine import cli
from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet, func_jet
from pinn_sine.derivatives.linearization import fitted_parameters, linearize
from pinn_sine.nets import (MLP, Finer, FourierFeatures, MetaSin, PeriodicEncoding, ReLU, Sine, Tanh, build_net,
                            net_from_config)
from pinn_sine.problems import Burgers1D, Poisson2D, Wave1D
from pinn_sine.runs import load_net

NAMES = ("t", "x", "y")
ACTIVATIONS = {
    "siren": lambda: Sine(3.0),
    "finer": lambda: Finer(3.0, first_bias_k=0.5),
    "metasin": lambda: MetaSin(K=4),
    "tanh": lambda: Tanh(),
    "relu": lambda: ReLU(),
}
#: encodings of the (t, x, y) inputs: one periodic input, two with several modes, and
#: random Fourier features after the periodic encoding
ENCODINGS = {
    "x": lambda: (PeriodicEncoding({"x": 2.0}), None),
    "x+y-3-modes": lambda: (PeriodicEncoding({"y": 0.5, "x": 2.0}, modes=3), None),
    "x+fourier": lambda: (PeriodicEncoding({"x": 1.5}), FourierFeatures(5, 0.5)),
}


def _net(act: str, encoding: str, seed: int = 0, width: int = 7, depth: int = 2) -> MLP:
    periodic, fourier = ENCODINGS[encoding]()
    net = MLP(3, 2, width, depth, activation=ACTIVATIONS[act](), periodic=periodic, fourier=fourier,
              input_names=NAMES, seed=seed).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in net.activations:
            if isinstance(a, MetaSin):  # c0 != 0: the ReLU branch of sigma' is exercised
                a.c0.copy_(torch.randn(a.c0.shape, generator=g, dtype=torch.float64))
    return net


def _points(n: int = 10, seed: int = 0, d: int = 3) -> torch.Tensor:
    return 2.0 * torch.rand(n, d, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64) - 1.0


def _close(a, b, what, tol=1e-10):
    scale = max(1.0, float(b.detach().abs().max()))
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale, msg=what)


# ----- exact periodicity ------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("act", ["siren", "finer", "metasin", "tanh"])
def test_every_network_on_the_encoding_is_periodic(act, encoding):
    net = _net(act, encoding)
    x = _points()
    u = net(x).detach()
    assert float(u.std()) > 1e-3  # not a constant network
    for name, period in net.encoding.periods.items():
        a = NAMES.index(name)
        for shift in (1, -1, 3):
            xs = x.clone()
            xs[:, a] += shift * period
            _close(net(xs).detach(), u, f"{act} {encoding}: u(x + {shift} L e_{name})", tol=1e-12)
    if len(net.encoding.periods) == 2:  # both inputs shifted at once
        xs = x.clone()
        xs[:, 1] += 2.0
        xs[:, 2] -= 0.5
        _close(net(xs).detach(), u, f"{act} {encoding}: both shifted", tol=1e-12)
    t = x.clone()
    t[:, 0] += 0.37  # t is passed through: not periodic
    assert float((net(t) - net(x)).detach().abs().max()) > 1e-4


def test_the_channels_are_the_harmonics():
    enc = PeriodicEncoding({"x": 2.0}, modes=2).build(("t", "x")).double()
    x = torch.tensor([[0.3, 0.5], [-0.7, -1.0]], dtype=torch.float64)
    k = math.pi * torch.tensor([1.0, 2.0], dtype=torch.float64)  # 2 pi m / L
    want = torch.cat([x[:, :1], torch.cos(x[:, 1:] * k), torch.sin(x[:, 1:] * k)], dim=1)
    torch.testing.assert_close(enc(x), want, rtol=0, atol=1e-15)
    assert enc.out_dim == enc.periodic_dim == 5 and enc.channels(2) == 5
    assert PeriodicEncoding({"x": 1.0}).describe() == "periodic in x (period 1), 1 mode"


# ----- the closed-form jet -------------------------------------------------------------------
def test_encoding_jet_equals_autograd_per_channel():
    """gamma's own streams: dz/dx_a = 2 pi m / L_a on the periodic channels, unit vectors
    and zero second derivatives on the passed-through inputs."""
    for periodic, fourier in (ENCODINGS["x+y-3-modes"](), ENCODINGS["x+fourier"]()):
        enc = periodic.build(NAMES, fourier=fourier, generator=torch.Generator().manual_seed(0)).double()
        x = _points(6).requires_grad_(True)
        dirs = (1, 0, 2)
        terms = (((0, 0),), ((1, 0),), ((2, 1),), ((0, 0), (2, 2)))
        h, dh, d2h = enc.jet(x, dirs, terms)
        H = enc.jet_stacked(x, dirs, terms)
        assert H.shape == (1 + len(dirs) + len(terms), 6, enc.out_dim)
        torch.testing.assert_close(H, torch.cat([h.unsqueeze(0), dh, d2h]), rtol=0, atol=0)
        _close(h, enc(x), "value")
        for c in range(enc.out_dim):
            (g,) = torch.autograd.grad(enc(x)[:, c].sum(), x, create_graph=True)
            hess = [torch.autograd.grad(g[:, a].sum(), x, retain_graph=True)[0] for a in range(3)]
            for s, a in enumerate(dirs):
                _close(dh[s, :, c], g[:, a], f"channel {c} d/d{NAMES[a]}")
            for q, term in enumerate(terms):
                want = sum(hess[dirs[i]][:, dirs[j]] for i, j in term)
                _close(d2h[q, :, c], want, f"channel {c} term {term}")
        if fourier is None:
            assert float(d2h[:, :, 0].detach().abs().max()) == 0.0  # t passed through: no curvature
            assert enc.jet(x, dirs, ())[2] is None


def _specs():
    n = NAMES
    return {
        "laplacian": DerivativeSpec.laplacian(n[1:]),
        "hessian": DerivativeSpec.hessian(n),
        "first-only": DerivativeSpec(first=n),
        # a first derivative no pair needs, an off-diagonal pair given in reverse order
        "mixed": DerivativeSpec(first=("t",), second=(("y", "x"), ("x", "x"))),
        # Wave2D's u_tt - c^2 (u_xx + u_yy): a pair beside a partial Laplacian
        "pair+partial-laplacian": DerivativeSpec(second=(("t", "t"),), laplacians=(("x", "y"),)),
    }


def _quantities(jet, spec):
    out = {"u": jet.u}
    out.update({f"d{n}": jet.d(n) for n in spec.directions()})
    for a, b in spec.pairs():
        out[f"d{a}d{b}"], out[f"d{b}d{a}"] = jet.d2(a, b), jet.d2(b, a)
    out.update({f"lap{g}": jet.laplacian(g) for g in spec.laplacian_groups()})
    return out


JET_CASES = [(act, enc, spec) for act in ACTIVATIONS for enc in ENCODINGS for spec in _specs()]
# torch.func's forward-over-reverse is slow to trace: one spec per (activation, encoding)
FUNC_CASES = [c for c in JET_CASES if c[2] == "mixed"]


@pytest.mark.parametrize("act, enc, spec_name", JET_CASES)
def test_jet_engine_equals_autograd(act, enc, spec_name):
    _engine_equals_autograd(forward_jet, act, enc, spec_name)


@pytest.mark.parametrize("act, enc, spec_name", FUNC_CASES)
def test_func_engine_equals_autograd(act, enc, spec_name):
    _engine_equals_autograd(func_jet, act, enc, spec_name)


def _engine_equals_autograd(engine, act, enc, spec_name):
    seed = JET_CASES.index((act, enc, spec_name))
    net = _net(act, enc, seed=seed)
    spec = _specs()[spec_name]
    x = _points(seed=seed)
    q, ref = _quantities(engine(net, x, NAMES, spec), spec), _quantities(autograd_jet(net, x, NAMES, spec), spec)
    assert q.keys() == ref.keys()
    for k in ref:
        assert q[k].shape == (x.shape[0], 2)
        _close(q[k], ref[k], f"{act} {enc} {spec_name}: {k}")
    # training backpropagates through the jet: the weight gradients agree too
    params = [p for p in net.parameters() if p.requires_grad]

    def loss(qs):
        return sum((v ** 2).mean() * (i + 1) for i, v in enumerate(qs.values()))

    for p, a, b in zip(params, torch.autograd.grad(loss(q), params, allow_unused=True),
                       torch.autograd.grad(loss(ref), params, allow_unused=True)):
        _close(torch.zeros_like(p) if a is None else a, torch.zeros_like(p) if b is None else b,
               f"{act} {enc} {spec_name}: weight gradient")


def test_constrained_net_jet_on_the_encoding():
    """A hard constraint wraps the periodic net: the jet engine still equals autograd."""
    problem = Wave1D(constraint="hard")
    net = problem.constrain(build_net(problem, "siren", width=6, depth=1, periodic={"x": 2.0}).double())
    spec = DerivativeSpec(first=("t",), second=(("t", "t"), ("x", "x")))
    x = torch.rand(7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, ref = _quantities(forward_jet(net, x, problem.input_names, spec), spec), \
        _quantities(autograd_jet(net, x, problem.input_names, spec), spec)
    for k in ref:
        _close(q[k], ref[k], k)


# ----- the Gauss-Newton Jacobian ------------------------------------------------------------------
def _reverse_mode(problem, net, batch, weights):
    """r and J row by row: one reverse-mode pass per entry of the weighted residual."""
    params = fitted_parameters(problem, net)
    jets = {k: forward_jet(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()
            if k in batch}
    vec = torch.cat([(r * math.sqrt(weights.get(name, 1.0) / r.shape[0])).T.reshape(-1)
                     for name, r in problem.residuals(jets, batch).items()])
    J = torch.stack([torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                for p, g in zip(params, torch.autograd.grad(v, params, retain_graph=True,
                                                                            allow_unused=True))])
                     for v in vec])
    return vec.detach(), J


@pytest.mark.parametrize("fourier", [False, True], ids=["periodic", "periodic+fourier"])
@pytest.mark.parametrize("make", [Wave1D, Burgers1D], ids=["wave1d", "burgers1d"])
def test_gauss_newton_jacobian_equals_reverse_mode(make, fourier):
    problem = make()
    net = build_net(problem, "siren", width=6, depth=2, seed=1, periodic={"x": 2.0},
                    fourier=FourierFeatures(3, 0.5) if fourier else None).double()
    assert isinstance(net.encoding, PeriodicEncoding)
    batch = {k: v.double() for k, v in problem.sample(8, torch.Generator().manual_seed(0)).items()}
    weights = {"boundary": 3.0}
    lin = linearize(problem, net, batch, weights)
    r_ref, J_ref = _reverse_mode(problem, net, batch, weights)
    torch.testing.assert_close(lin.r, r_ref, rtol=0, atol=1e-12)
    J = lin.materialize()
    assert J.shape == J_ref.shape
    torch.testing.assert_close(J, J_ref, rtol=0, atol=1e-10 * max(1.0, float(J_ref.abs().max())))
    v = torch.randn(J.shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(lin.mv(v), J_ref @ v, rtol=0, atol=1e-9 * max(1.0, float(J_ref.abs().max())))


# ----- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fourier", [False, True], ids=["periodic", "periodic+fourier"])
def test_config_round_trip_rebuilds_the_same_network(fourier):
    problem = Wave1D()
    net = build_net(problem, "siren", width=8, depth=2, seed=3, periodic=PeriodicEncoding({"x": 2.0}, modes=2),
                    fourier=FourierFeatures(4, 0.5) if fourier else None).double()
    config = json.loads(json.dumps(net.config))
    assert config["periodic"] == {"periods": {"x": 2.0}, "modes": 2, "input_names": ["t", "x"]}
    again = net_from_config(config).double()
    assert again.config == net.config
    assert "encoding.k" not in again.state_dict()  # derived from the config, not stored
    again.load_state_dict(net.state_dict())
    x = torch.rand(9, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)
    # a fresh init from the same config is the same net (the seed draws the same weights)
    torch.testing.assert_close(net_from_config(config).double()(x), net(x), rtol=0, atol=0)
    # a net without the encoding keeps its config as before (no "periodic" key)
    assert "periodic" not in build_net(problem, "siren", width=4, depth=1).config


# ----- build_net's rule ----------------------------------------------------------------------------
def _declaring(periods):
    problem = Wave1D()
    problem.periodic = periods
    return problem


def test_build_net_honours_the_problems_periods_the_override_and_off():
    assert Wave1D().periodic == {} and build_net(Wave1D(), "siren", width=4, depth=1).encoding is None
    declared = _declaring({"x": 2.0})
    net = build_net(declared, "siren", width=4, depth=1)
    assert net.encoding.periods == {"x": 2.0} and net.encoding.modes == 1
    assert net.encoding.input_names == ("t", "x")
    assert build_net(declared, "siren", width=4, depth=1, periodic={}).encoding is None
    net = build_net(declared, "tanh", width=4, depth=1, periodic={"x": 4.0, "t": 1.0})
    assert net.encoding.periods == {"x": 4.0, "t": 1.0}
    net = build_net(declared, "siren", width=4, depth=1, periodic=PeriodicEncoding({"x": 2.0}, modes=3))
    assert net.encoding.modes == 3 and net.linears[0].in_features == 1 + 2 * 3  # t, 3 cosines, 3 sines
    # "fourier-tanh" on a periodic problem: the Fourier features follow the periodic encoding
    net = build_net(declared, "fourier-tanh", width=4, depth=1)
    assert net.encoding.fourier is not None and net.linears[0].in_features == 128
    assert net.config["fourier"] == {"n_features": 64, "scale": 1.0} and net.config["periodic"]["modes"] == 1


BAD = [
    (lambda: build_net(_declaring({"z": 2.0}), "siren"), ValueError,
     r"Wave1D.periodic = \{'z': 2.0\} cannot be honoured: periodic input 'z' is not an input: the inputs are "
     r"\['t', 'x'\].*pass periodic=\{\} to build_net, or --periodic none"),
    (lambda: build_net(_declaring({"x": 0.0}), "siren"), ValueError,
     r"Wave1D.periodic = .* the period of 'x' must be a finite number > 0, got 0.0"),
    (lambda: build_net(Poisson2D(), "siren", periodic={"x": math.inf}), ValueError,
     r"periodic = \{'x': inf\} cannot be honoured: .*the period of 'x' must be a finite number > 0"),
    (lambda: PeriodicEncoding({"x": -1.0}), ValueError, r"the period of 'x' must be a finite number > 0, got -1.0"),
    (lambda: PeriodicEncoding({"x": math.nan}), ValueError, r"the period of 'x' must be a finite number > 0"),
    (lambda: PeriodicEncoding({"x": "2"}), ValueError, r"the period of 'x' must be a number, got '2'"),
    (lambda: PeriodicEncoding({"x": True}), ValueError, r"the period of 'x' must be a number, got True"),
    (lambda: PeriodicEncoding({}), ValueError, r"periods names no input"),
    (lambda: PeriodicEncoding([("x", 2.0)]), ValueError, r"periods must be a mapping input name -> period"),
    (lambda: PeriodicEncoding({"x": 2.0}, modes=0), ValueError, r"modes must be an integer >= 1.*got modes=0"),
    (lambda: PeriodicEncoding({"x": 2.0}, modes=1.5), ValueError, r"modes must be an integer >= 1"),
    (lambda: PeriodicEncoding({"x": 2.0}).build(("t", "t")), ValueError, r"input_names must be distinct strings"),
    (lambda: PeriodicEncoding({"x": 2.0})(torch.zeros(2, 2)), RuntimeError, r"not bound to input names"),
    (lambda: PeriodicEncoding({"x": 2.0}).build(("t", "x"), fourier=FourierFeatures(4)), ValueError,
     r"draws the Fourier frequencies: pass generator="),
    (lambda: MLP(2, 1, periodic=PeriodicEncoding({"x": 2.0})), ValueError,
     r"needs input_names \(the problem's, e.g. \('t', 'x'\)\)"),
    (lambda: MLP(2, 1, periodic={"x": 2.0}, input_names=("t", "x")), TypeError,
     r"periodic must be a PeriodicEncoding\(periods, modes\) or None"),
    (lambda: MLP(2, 1, periodic=PeriodicEncoding({"x": 2.0}), input_names=("x",)), ValueError,
     r"input_names must name the 2 inputs"),
    (lambda: net_from_config({**build_net(Wave1D(), "siren", width=4, depth=1).config, "periodic": {"x": 2.0}}),
     ValueError, r"periodic entry must hold periods, modes and input_names"),
]


@pytest.mark.parametrize("make, exc, match", BAD, ids=range(len(BAD)))
def test_errors_name_the_parameter_and_the_fix(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# ----- the command line ----------------------------------------------------------------------------
SMALL = ["--width", "8", "--depth", "1", "--batch", "64", "--resolution", "33", "--quiet", "--steps", "2"]


def test_cli_records_periodic_and_rebuilds_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    try:
        assert cli.main(["solve", "wave1d", *SMALL, "--periodic", "x=2.0", "--periodic-modes", "2",
                         "--out", "run"]) == 0
        assert "periodic in x (period 2), 2 modes" in capsys.readouterr().out
        config = json.loads((tmp_path / "run" / "config.json").read_text())
        assert config["net"]["periodic"] == {"periods": {"x": 2.0}, "modes": 2, "input_names": ["t", "x"]}
        assert config["options"]["periodic"] == "x=2.0" and config["options"]["periodic_modes"] == 2
        net = load_net(tmp_path / "run" / "checkpoint.pt")
        assert isinstance(net.encoding, PeriodicEncoding) and net.encoding.modes == 2
        x = torch.rand(5, 2, generator=torch.Generator().manual_seed(0), dtype=net.linears[0].weight.dtype)
        shifted = x + torch.tensor([0.0, 2.0], dtype=x.dtype)
        torch.testing.assert_close(net(shifted), net(x), rtol=1e-5, atol=1e-5)  # float32 run
        # --resume rebuilds the periodic net (its config must match the checkpoint's)
        assert cli.main(["solve", "--resume", "run", "--steps", "3"]) == 0
        assert "periodic in x (period 2), 2 modes" in capsys.readouterr().out
        # --config reruns it; --periodic none switches it off there (the stored modes with it)
        assert cli.main(["solve", "--config", "run/config.json", "--out", "again"]) == 0
        assert json.loads((tmp_path / "again" / "config.json").read_text())["net"] == config["net"]
        assert cli.main(["solve", "--config", "run/config.json", "--periodic", "none", "--out", "off"]) == 0
        assert "periodic" not in json.loads((tmp_path / "off" / "config.json").read_text())["net"]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("argv, match", [
    (["--periodic", "x"], r"argument --periodic: takes NAME=PERIOD\[,NAME=PERIOD...\] \(e.g. x=2.0\) or none"),
    (["--periodic", "x=0"], r"argument --periodic: the period of 'x' must be a finite number > 0, got '0'"),
    (["--periodic", "x=1,x=2"], r"'x' is given twice"),
    (["--periodic", "z=1"], r"periodic input 'z' is not an input: the inputs are \['t', 'x'\]"),
    (["--periodic-modes", "2"], r"--periodic-modes 2: no input is periodic \(Wave1D declares no periodic input\)"),
], ids=["syntax", "period", "twice", "not-an-input", "modes-alone"])
def test_cli_periodic_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main(["solve", "wave1d", *SMALL, *argv, "--out", "run"])
    text = str(info.value.code) if info.value.code not in (None, 2) else capsys.readouterr().err
    assert len(text.strip().splitlines()) == 1
    assert re.search(match, text), text
    assert not (tmp_path / "run").exists()
