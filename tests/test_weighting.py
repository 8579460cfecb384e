"""Loss weighting (fixed, gradient-norm, causal) and residual-based adaptive sampling."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine import train
from pinn_sine.adaptive import RADSampler, aligned_entries
from pinn_sine.nets import MLP, Sine
from pinn_sine.plots import loss_curves
from pinn_sine.problems import Poisson2D, Wave1D, Wave2D
from pinn_sine.problems.base import Problem
from pinn_sine.train import load_checkpoint
from pinn_sine.weighting import CausalWeights, FixedWeights, GradNormWeights


def _net(in_dim=2, seed=0, dtype=torch.float32):
    return MLP(in_dim, 1, width=16, depth=2, activation=Sine(30.0), first_omega=4.0, seed=seed).to(dtype)


def _rows(result):
    return [{k: v for k, v in row.items() if k != "time"} for row in result.history]


def _batch(problem, n, seed=0):
    return {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}


class _LoudBoundary(Poisson2D):
    """Poisson2D with the boundary term multiplied by 1e4: its gradient dominates."""

    def losses(self, jets, batch):
        out = super().losses(jets, batch)
        out["boundary"] = 1e4 * out["boundary"]
        return out


# ----- fixed weights ------------------------------------------------------------------------
def test_fixed_weights_object_equals_dict_and_is_logged():
    kw = dict(steps=3, batch=32, seed=0, progress=False, log_every=1)
    a = train(Poisson2D(), _net(), weights={"boundary": 10.0}, **kw)
    b = train(Poisson2D(), _net(), weights=FixedWeights({"boundary": 10.0}), **kw)
    assert _rows(a) == _rows(b)
    row = a.history[-1]
    assert row["w_boundary"] == 10.0 and row["w_pde"] == 1.0
    assert row["loss"] == pytest.approx(row["pde"] + 10.0 * row["boundary"], rel=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: FixedWeights({"pde": -1.0}), r"weights\['pde'\] must be > 0"),
    (lambda: GradNormWeights(update_every=0), "update_every must be an integer >= 1"),
    (lambda: GradNormWeights(alpha=1.0), r"alpha must be in \[0, 1\)"),
    (lambda: CausalWeights(eps=0.0), "eps must be > 0"),
    (lambda: CausalWeights(chunks=1), "chunks must be an integer >= 2"),
    (lambda: RADSampler(k=-1), "k must be >= 0"),
    (lambda: RADSampler(refresh_every=0), "refresh_every must be an integer >= 1"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----- gradient-norm balancing --------------------------------------------------------------
def test_gradnorm_update_rule():
    w = GradNormWeights(update_every=1, alpha=0.0)
    w.update({"a": 1.0, "b": 100.0})
    assert w.current == pytest.approx({"a": 50.5, "b": 0.505})  # mean / norm
    smooth = GradNormWeights(update_every=1, alpha=0.9)
    smooth.update({"a": 1.0, "b": 100.0})
    assert smooth.current == pytest.approx({"a": 0.9 + 0.1 * 50.5, "b": 0.9 + 0.1 * 0.505})
    smooth.update({"a": 0.0, "b": 100.0})  # a zero gradient leaves its weight alone
    assert smooth.current["a"] == pytest.approx(0.9 + 0.1 * 50.5)


def test_gradnorm_gives_the_larger_gradient_the_smaller_weight():
    problem = _LoudBoundary()
    net = _net(dtype=torch.float64)
    # The gradient norms at the initial parameters, measured directly.
    terms = problem.compute_losses(net, _batch(problem, 64))
    params = list(net.parameters())
    norms = {k: float(torch.cat([g.reshape(-1) for g in torch.autograd.grad(v, params, retain_graph=True,
                                                                           allow_unused=True) if g is not None]).norm())
             for k, v in terms.items()}  # (the Laplacian does not see the output bias)
    assert norms["boundary"] > 10 * norms["pde"]
    result = train(problem, net, steps=6, batch=64, lr=1e-3, seed=0, progress=False, log_every=1,
                   weights=GradNormWeights(update_every=2, alpha=0.5))
    for row in result.history:
        assert math.isfinite(row["w_pde"]) and math.isfinite(row["w_boundary"])
        assert row["w_boundary"] < 1.0 < row["w_pde"]
    # Updates at steps 0, 2, 4 only: the weights change between rows 1->2 and 3->4.
    w = [r["w_pde"] for r in result.history]
    assert w[0] == w[1] and w[2] == w[3] and w[4] == w[5] and w[1] != w[2]
    assert result.history[0]["loss"] == pytest.approx(
        result.history[0]["w_pde"] * result.history[0]["pde"]
        + result.history[0]["w_boundary"] * result.history[0]["boundary"], rel=1e-9)


def test_resume_continues_with_the_same_adaptive_weights(tmp_path, interrupted_poisson):
    kw = dict(steps=40, batch=64, lr=1e-2, seed=0, progress=False, log_every=5)
    full = _net()
    r_full = train(Poisson2D(), full, weights=GradNormWeights(update_every=7, alpha=0.9), **kw)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(interrupted_poisson(stop_after=33), _net(), weights=GradNormWeights(update_every=7, alpha=0.9),
              checkpoint=ck, checkpoint_every=20, **kw)
    saved = load_checkpoint(ck)
    assert saved["step"] == 20 and saved["meta"]["weighting"]["updates"] == 3  # steps 0, 7, 14
    resumed = _net(seed=5)
    r_res = train(Poisson2D(), resumed, weights=GradNormWeights(update_every=7, alpha=0.9), resume=ck, **kw)
    assert _rows(r_res) == _rows(r_full)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


# ----- causal weighting -----------------------------------------------------------------------
@pytest.mark.parametrize("problem", [Poisson2D(), Wave1D(), Wave2D()], ids=["poisson2d", "wave1d", "wave2d"])
def test_pointwise_residual_mean_is_the_pde_term(problem):
    net = _net(in_dim=problem.in_dim, dtype=torch.float64)
    batch = _batch(problem, 128)
    from pinn_sine.derivatives import get_engine

    jets = {k: get_engine("jet")(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()}
    r = problem.pointwise_residual(jets, batch)
    assert r.shape == (128,)
    torch.testing.assert_close(r.mean(), problem.losses(jets, batch)["pde"], rtol=1e-12, atol=0)


def test_causal_weights_rule():
    cw = CausalWeights(eps=2.0, chunks=4).bind(Wave1D())
    t = torch.tensor([0.0, 0.1, 0.3, 0.6, 0.99, 1.0], dtype=torch.float64)
    assert cw.chunk_index(t).tolist() == [0, 0, 1, 2, 3, 3]
    means = torch.tensor([0.5, 0.25, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(cw.weights_from_means(means),
                               torch.exp(-2.0 * torch.tensor([0.0, 0.5, 0.75, 0.75], dtype=torch.float64)))
    pts = torch.stack([t, torch.full_like(t, 0.5)], dim=1)
    r = torch.tensor([1.0, 3.0, 2.0, 4.0, 1.0, 1.0], dtype=torch.float64)  # chunk means 2, 2, 4, 1
    expected = (torch.exp(-2.0 * torch.tensor([0.0, 2.0, 4.0, 8.0], dtype=torch.float64))
                * torch.tensor([2.0, 2.0, 4.0, 1.0], dtype=torch.float64)).mean()
    torch.testing.assert_close(cw.loss(r, pts), expected)


def test_causal_weights_logged_and_monotone_in_time():
    problem = Wave1D()
    net = MLP(2, 1, width=16, depth=2, activation=Sine(30.0), first_omega=5.0, seed=0)
    result = train(problem, net, steps=8, batch=256, lr=1e-3, seed=0, progress=False, log_every=2,
                   causal=CausalWeights(eps=2e3, chunks=8))
    for row in result.history:
        w = [row[f"causal_w{i}"] for i in range(8)]
        assert all(math.isfinite(v) and 0 < v <= 1 for v in w)
        assert w[0] == 1.0
        assert all(a >= b for a, b in zip(w, w[1:])), w
        assert w[-1] < 0.99  # eps large enough that the later chunks are held back
        assert row["pde_causal"] <= row["pde"] + 1e-12  # weights <= 1 (chunks are nearly even)
        assert row["loss"] == pytest.approx(row["pde_causal"] + row["initial"] + row["initial_velocity"]
                                            + row["boundary"], rel=1e-5)


def test_causal_needs_a_time_input():
    with pytest.raises(ValueError, match=r"CausalWeights needs a time-dependent problem .* inputs \('x', 'y'\)"):
        train(Poisson2D(), _net(), steps=1, batch=16, progress=False, causal=CausalWeights())


# ----- RAD -------------------------------------------------------------------------------------
class _Peaked(Poisson2D):
    """A constructed residual: 1e4 in the disc of radius 0.2 around (0.5, 0.5), 1 outside
    (|residual| = 100 vs 1), whatever the network."""

    def pointwise_residual(self, jets, batch):
        x = batch["interior"]
        inside = ((x - torch.tensor([0.5, 0.5], dtype=x.dtype)) ** 2).sum(1) < 0.2 ** 2
        return torch.where(inside, 1e4, 1.0).to(x.dtype)


def _inside(x):
    return float((((x - torch.tensor([0.5, 0.5], dtype=x.dtype)) ** 2).sum(1) < 0.04).double().mean())


def test_rad_concentrates_points_where_the_residual_is_large():
    problem = _Peaked()
    net = _net()
    g = torch.Generator().manual_seed(0)
    area = math.pi * 0.04 / 4.0  # the disc's share of [-1, 1]^2, ~3%
    share = {}
    for k in (0.0, 1.0, 2.0):
        # a pool much larger than the batch: draws are without replacement
        rad = RADSampler(pool=100_000, k=k, c=1.0)
        rad.refresh(problem, net, "jet", 1000, g)
        batch = rad.draw(problem, problem.sample(1000, g), g)
        share[k] = _inside(batch["interior"])
        # the source data moved with the points
        torch.testing.assert_close(batch["f"], problem.source(batch["interior"].double()))
        assert batch["interior"].shape[0] == 1000 and batch["boundary"].shape[0] == 250
    # k = 0: uniform. k = 1: eps = 100 vs 1, mean(eps) ~ 4.1, so the expected share is
    # 0.031 * 25.4 / (0.031 * 25.4 + 0.969 * 1.24) ~ 0.40 (measured 0.35-0.40: draws without
    # replacement deplete the disc a little); k = 2: ~0.51.
    assert share[0.0] == pytest.approx(area, abs=0.015)
    assert 0.3 < share[1.0] < share[2.0]


def test_rad_in_training_resumes_exactly(tmp_path, interrupted_poisson):
    kw = dict(steps=30, batch=64, lr=1e-2, seed=0, progress=False, log_every=5, resample_every=3)
    full = _net()
    r_full = train(Poisson2D(), full, adaptive=RADSampler(pool=512, refresh_every=10), **kw)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        # draws: batches at steps 0, 3, 6, 9, 12, 15; pools at 0, 10: the 8th (step 15) fails
        train(interrupted_poisson(stop_after=7), _net(), adaptive=RADSampler(pool=512, refresh_every=10),
              checkpoint=ck, checkpoint_every=10, **kw)
    # step 10 redraws the pool but not the batch: the checkpoint's points carry over
    assert load_checkpoint(ck)["step"] == 10
    resumed = _net(seed=4)
    r_res = train(Poisson2D(), resumed, adaptive=RADSampler(pool=512, refresh_every=10), resume=ck, **kw)
    assert _rows(r_res) == _rows(r_full)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_rad_needs_pointwise_residual():
    class NoHook(Problem):
        name = "nohook"
        input_names = ("x",)
        derivatives = {"interior": None}

    with pytest.raises(NotImplementedError, match="does not define pointwise_residual"):
        RADSampler().check(NoHook())


def test_aligned_entries_found_by_length_and_ambiguity_raises():
    problem = Poisson2D()
    batch = problem.sample(64, torch.Generator().manual_seed(0))
    assert aligned_entries(problem, batch, "interior") == ["f"]
    same = Poisson2D(boundary_fraction=1.0)
    with pytest.raises(ValueError, match="RAD cannot tell which set"):
        aligned_entries(same, same.sample(64, torch.Generator().manual_seed(0)), "interior")


# ----- sampling modes and the figure ----------------------------------------------------------
def test_fixed_points_are_drawn_once(interrupted_poisson):
    problem = interrupted_poisson(stop_after=1)  # a second draw would raise
    result = train(problem, _net(), steps=5, batch=32, seed=0, progress=False, resample_every="fixed", log_every=5)
    assert problem.calls == 1 and len(result.history) == 1
    with pytest.raises(ValueError, match='resample_every must be an integer >= 1 or "fixed"'):
        train(Poisson2D(), _net(), steps=1, progress=False, resample_every="never")


def test_loss_figure_draws_the_weights(tmp_path):
    result = train(Wave1D(), MLP(2, 1, 8, 1, activation=Sine(30.0), first_omega=5.0), steps=4, batch=64,
                   progress=False, log_every=2, weights=GradNormWeights(update_every=2),
                   causal=CausalWeights(chunks=4))
    path = loss_curves(result.history, tmp_path / "loss.png")
    assert path.exists() and path.stat().st_size > 0
    keys = set(result.history[0])
    assert {"w_pde", "w_initial", "w_boundary", "causal_w0", "causal_w3", "pde_causal"} <= keys
