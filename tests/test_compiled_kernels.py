"""The "compiled" backend: the SIREN and FINER jet nodes with their arithmetic compiled
by torch.compile (pinn_sine.kernels.compiled) against the native nodes, float64."""
from __future__ import annotations

import pytest
import torch

from pinn_sine.derivatives import DerivativeSpec, forward_jet
from pinn_sine.kernels import KernelUnavailableError, backend_for, compiled, dispatch
from pinn_sine.kernels.compiled import compiled_jet_stacked
from pinn_sine.nets import MLP, Finer, MetaSin, Sine
from pinn_sine.nets.base import elementwise_jet
from pinn_sine.nets.sine import sine_jet

pytestmark = pytest.mark.timeout(600)
NAMES = ("x", "y")
#: the Laplacian as one stream, a first derivative and a mixed pair beside it
SPEC = DerivativeSpec(first=("x",), second=(("x", "y"),), laplacians=(NAMES,))


def _force(monkeypatch, backend: str) -> None:
    monkeypatch.setattr(dispatch, "_forced", dispatch.parse_backend(backend))


def _engine_outputs(net, x):
    """The jet's value and derivatives, and the weight gradients of a loss using all of them."""
    jet = forward_jet(net, x, NAMES, SPEC)
    outs = [jet.u, jet.d("x"), jet.d("y"), jet.d2("x", "y"), jet.laplacian(NAMES)]
    loss = sum((o ** 2).mean() for o in outs)
    return [o.detach() for o in outs] + list(torch.autograd.grad(loss, list(net.parameters())))


@pytest.mark.parametrize("make", [lambda: Sine(30.0), lambda: Finer(30.0)], ids=["siren", "finer"])
def test_engine_on_compiled_nodes_matches_native(monkeypatch, make):
    net = MLP(2, 1, 12, 2, activation=make(), first_omega=3.0, seed=0).double()
    x = torch.rand(37, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    _force(monkeypatch, "native")
    ref = _engine_outputs(net, x)
    _force(monkeypatch, "compiled")
    assert backend_for(x) == "compiled"
    got = _engine_outputs(net, x)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)
    # Another batch size runs the same dynamic-shape programs: nothing is compiled again.
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    x2 = torch.rand(51, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _engine_outputs(net, x2)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs > 0


def test_compiled_node_without_bias_matches_native_and_passes_gradcheck():
    gen = torch.Generator().manual_seed(3)
    terms = (((0, 0), (1, 1)), ((0, 1),))
    Z = torch.randn(3, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)  # no second-order slabs yet
    G = torch.randn(5, 6, 5, generator=gen, dtype=torch.float64)
    H = compiled_jet_stacked(Z, None, "sine", 2.0, 2, terms)
    (gZ,) = torch.autograd.grad(H, Z, G)
    H_ref = sine_jet(Z, None, 2.0, 2, terms)
    (gZ_ref,) = torch.autograd.grad(H_ref, Z, G)
    torch.testing.assert_close(H, H_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gZ, gZ_ref, rtol=1e-12, atol=1e-12)
    bias = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    Z4 = torch.randn(5, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)  # with them
    assert torch.autograd.gradcheck(lambda z, b: compiled_jet_stacked(z, b, "finer", 1.5, 2, terms), (Z4, bias))
    torch.testing.assert_close(compiled_jet_stacked(Z4, bias, "finer", 1.5, 2, terms),
                               elementwise_jet(Finer(1.5), Z4, bias, 2, terms), rtol=1e-12, atol=1e-12)


def test_families_without_a_compiled_node_run_natively(monkeypatch):
    """MetaSin (whose compiled node measured slower than its native one) and tanh."""
    from pinn_sine.nets import Tanh

    metasin = MetaSin(K=3).for_layer(4, first=False, omega=None, generator=torch.Generator().manual_seed(0))
    Z = torch.randn(3, 5, 4, dtype=torch.float64)
    terms = (((0, 0), (1, 1)),)
    for act in (metasin.double(), Tanh()):
        _force(monkeypatch, "native")
        ref = act.jet_stacked(Z, None, 2, terms)
        _force(monkeypatch, "compiled")
        assert torch.equal(act.jet_stacked(Z, None, 2, terms), ref)


def test_unknown_family_and_compiler_failure_are_clear_errors(monkeypatch):
    Z = torch.zeros(1, 2, 3)
    families = r"\['finer', 'sine'\]"
    with pytest.raises(ValueError, match=rf"no compiled jet for family 'tanh'; the families are {families}"):
        compiled_jet_stacked(Z, None, "tanh", 1.0, 0, ())

    def failing(*args):
        raise torch._dynamo.exc.BackendCompilerFailed(failing, RuntimeError("no C++ compiler"), None)
    monkeypatch.setattr(compiled, "_program", lambda *a: failing)
    with pytest.raises(KernelUnavailableError, match=r"failed to compile .*set PINN_SINE_KERNELS=native"):
        compiled_jet_stacked(Z, None, "sine", 1.0, 0, ())


def test_the_backend_name_is_accepted():
    assert dispatch.parse_backend(" Compiled ") == "compiled"


def test_cli_solve_on_the_compiled_backend_follows_the_native_run(tmp_path, monkeypatch):
    """`pinn-sine solve --kernels compiled`: the same seeded run as on the native nodes
    (float32 rounding only), and the choice is stored in the run's config."""
    import json

    from pinn_sine.cli import main

    monkeypatch.setattr(dispatch, "_forced", dispatch._forced)  # restored after the test
    before = dispatch.requested_backend()
    losses = {}
    for backend in ("native", "compiled"):
        out = tmp_path / backend
        assert main(["solve", "poisson2d", "--kernels", backend, "--steps", "6", "--batch", "64", "--width", "16",
                     "--depth", "2", "--resolution", "21", "--eval-every", "3", "--out", str(out), "--quiet"]) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["options"]["kernels"] == backend and config["kernels"]["backend"] == backend
        assert dispatch.requested_backend() == before  # an in-process solve restores the choice
        with open(out / "history.csv") as fh:
            rows = [line.split(",") for line in fh.read().splitlines()]
        metrics = json.loads((out / "metrics.json").read_text())
        losses[backend] = [float(r[rows[0].index("loss")]) for r in rows[1:]] + [metrics["rel_l2"]]
    assert len(losses["native"]) >= 2
    assert losses["compiled"] == pytest.approx(losses["native"], rel=1e-4)
