"""Data-parallel training: 2 CPU processes (gloo, loopback) take the step a single
process takes on the union of their points.

The test starts this file twice as a script with torchrun's environment variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); each worker trains and saves
its gradients, history and parameters; the test then computes the single-process step
on the union of both ranks' points and compares.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pinn_sine import train
from pinn_sine.adaptive import RADSampler
from pinn_sine.distributed import rank_seed
from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import Poisson2D, Wave1D
from pinn_sine.train import load_checkpoint
from pinn_sine.weighting import CausalWeights, GradNormWeights

WORLD = 2
SEED = 3
BATCH = 64  # global: 32 interior points per rank


def _net():
    return MLP(2, 1, width=16, depth=2, activation=Sine(30.0), first_omega=4.0, seed=0).double()


def _grads(net):
    return [p.grad.detach().clone() for p in net.parameters()]


class _Union(Poisson2D):
    """Poisson2D whose sampler returns the union of what each rank draws (every entry,
    point sets and data alike, concatenated in rank order)."""

    def sample(self, n, generator, *, progress=1.0):
        parts = [Poisson2D.sample(self, n // WORLD, torch.Generator().manual_seed(rank_seed(SEED, r)),
                                  progress=progress) for r in range(WORLD)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _worker(out: Path) -> None:
    from pinn_sine import distributed

    ctx = distributed.init_from_env("cpu")
    assert ctx.world_size == WORLD and dist_backend() == "gloo"
    # 1. one Adam step with fixed weights: the gradients after train() are the step's.
    net = _net()
    r1 = train(Poisson2D(), net, steps=1, batch=BATCH, seed=SEED, lr=1e-3, progress=False, log_every=1)
    # 2. adaptive weights, causal weights and RAD together, with a checkpoint.
    wave = MLP(2, 1, width=16, depth=2, activation=Sine(30.0), first_omega=5.0, seed=1).double()
    gn = GradNormWeights(update_every=2)
    r2 = train(Wave1D(), wave, steps=4, batch=BATCH, seed=SEED, lr=1e-3, progress=False, log_every=2,
               weights=gn, causal=CausalWeights(eps=10.0, chunks=4), adaptive=RADSampler(pool=256, refresh_every=2),
               checkpoint=out / "ck.pt")
    torch.save({"grads": _grads(net), "history": r1.history, "wave_params": [p.detach() for p in wave.parameters()],
                "wave_history": r2.history, "gn": gn.current, "world": ctx.world_size},
               out / f"rank{ctx.rank}.pt")
    distributed.shutdown()


def dist_backend() -> str:
    import torch.distributed as dist

    return dist.get_backend()


def _untimed(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "time"}


@pytest.mark.timeout(120)
def test_two_processes_take_the_union_step(tmp_path, launch_ranks):
    launch_ranks(__file__, tmp_path, WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # The all-reduced gradient is the single-process gradient on the union of the points.
    single = _net()
    r_single = train(_Union(), single, steps=1, batch=BATCH, seed=SEED, lr=1e-3, progress=False, log_every=1)
    for r in ranks:
        for g, g_ref in zip(r["grads"], _grads(single)):
            torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-14)
    # Logged losses are over the whole batch (rank means averaged).
    for key in ("loss", "pde", "boundary"):
        assert ranks[0]["history"][0][key] == pytest.approx(r_single.history[0][key], rel=1e-10)

    # The ranks stay in step: same parameters, same adaptive and causal weights.
    a, b = ranks
    for p, q in zip(a["wave_params"], b["wave_params"]):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert a["gn"] == b["gn"] and len(a["gn"]) == 4
    assert [_untimed(r) for r in a["wave_history"]] == [_untimed(r) for r in b["wave_history"]]
    # Only rank 0 wrote the checkpoint; it holds both ranks' generators and points.
    ck = load_checkpoint(tmp_path / "ck.pt")
    assert len(ck["ranks"]) == WORLD and ck["meta"]["train"]["world_size"] == WORLD
    assert not torch.equal(ck["ranks"][0]["generator"], ck["ranks"][1]["generator"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "rank0.pt", "rank1.pt"]


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
