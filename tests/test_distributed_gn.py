"""Gauss-Newton under torchrun: 2 CPU processes (gloo, loopback) take the step a single
process takes on the union of their points, for the dense (primal, J^T J and J^T r
summed over the ranks) and the matrix-free cg descents; the descents whose system
spans the ranks refuse; a run killed inside the stage resumes bit-identically.

As in tests/test_distributed.py, the test starts this file twice as a script with
torchrun's environment variables; each worker trains and saves its parameters; the test
then runs the single-process stage on the union of both ranks' points and compares.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pinn_sine import train
from pinn_sine.derivatives.linearization import linearize
from pinn_sine.distributed import rank_seed
from pinn_sine.nets import MLP, Sine
from pinn_sine.optim import GaussNewton
from pinn_sine.problems import Poisson2D
from pinn_sine.optim.conformance import interrupting

WORLD = 2
SEED = 3
BATCH = 256  # global: 128 interior points per rank (N = 320 rows > p = 205: one process solves the primal too)
STEPS = 3
KW = dict(batch=BATCH, seed=SEED, progress=False, log_every=1)
#: the descents compared with one process (the damping gives an accepted, a rejected and an
#: accepted step); cg solved to the last digits, so its step is the exact damped step
#: whatever the preconditioner's sketch
CASES = {"dense": {"damping": 0.1},
         "dense-acceleration": {"damping": 0.1, "descent": {"name": "dense", "acceleration": True}},
         "cg": {"damping": 0.1, "descent": {"name": "cg", "rank": 20},
                "solver": {"name": "cg", "rtol": 1e-13, "max_iter": 500}}}


def _net():
    return MLP(2, 1, width=12, depth=2, activation=Sine(3.0), first_omega=2.0, seed=0).double()


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


class _Union(Poisson2D):
    """Poisson2D whose sampler returns the union of what each rank's first stage draws
    (rank_seed(SEED + 0, r)), concatenated in rank order."""

    def sample(self, n, generator, *, progress=1.0):
        parts = [Poisson2D.sample(self, n // WORLD, torch.Generator().manual_seed(rank_seed(SEED, r)),
                                  progress=progress) for r in range(WORLD)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


_Killed = interrupting(Poisson2D)  # the same call on every rank: the ranks stop together


def _resume_stages():
    # the Nystrom sketch (inexact cg: the sketch shows in the step) and a fresh batch each
    # step (each rank's own generator and points) must both come back from the checkpoint
    return [GaussNewton(5, damping=1.0, descent={"name": "cg", "rank": 10}, resample_every=1)]


def _worker(out: Path) -> None:
    from pinn_sine import distributed
    from pinn_sine.train import load_checkpoint

    ctx = distributed.init_from_env("cpu")
    assert ctx.world_size == WORLD
    saved = {}
    # 1. the parameters after each of the first STEPS steps, for each descent
    for name, options in CASES.items():
        for steps in range(1, STEPS + 1):
            net = _net()
            stage = GaussNewton(steps, **options)
            res = train(Poisson2D(), net, stages=[stage], **KW)
            saved[f"{name}/{steps}"] = _params(net)
        saved[f"{name}/generators"] = (stage.generator.get_state(), stage.descent.generator.get_state())
        saved[f"{name}/history"] = [{k: v for k, v in row.items() if k not in ("time", "step_time")}
                                    for row in res.history]
    # 2. the descents that need all the rows in one process refuse
    saved["refused"] = {}
    for descent in ("dual", "sketched", {"name": "dense", "form": "dual"}):
        try:
            train(Poisson2D(), _net(), stages=[GaussNewton(1, descent=descent)], **KW)
        except ValueError as err:
            saved["refused"][str(descent)] = str(err)
    # 3. this rank's products, summed over the ranks: J^T J V (a matrix), diag(J^T J), ||r||^2,
    # and a Nystrom sketch from a generator seeded alike (it factors only if the sketch is shared)
    from pinn_sine.derivatives.linearization import linearize_ranks
    from pinn_sine.optim.descents import nystrom_preconditioner

    points = Poisson2D().sample(BATCH // WORLD, torch.Generator().manual_seed(rank_seed(SEED, ctx.rank)))
    lin = linearize_ranks(Poisson2D(), _net(), {k: v.double() for k, v in points.items()}, {"boundary": 3.0}, WORLD)
    V = torch.randn(lin.n_cols, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    saved["products"] = {"JtJV": lin.rmv(lin.mv(V)), "diag": lin.normal_diagonal(),
                         "loss": float(lin.sum_over_ranks(lin.r @ lin.r)),
                         "nystrom": nystrom_preconditioner(lin, 1e-6, 10, torch.Generator().manual_seed(1)) is not None}
    # 4. killed inside the stage and resumed: the run it would have been
    full = _net()
    saved["full_history"] = train(Poisson2D(), full, stages=_resume_stages(), **KW).history
    ck = out / "ck.pt"
    try:
        train(_Killed(8), _net(), stages=_resume_stages(), checkpoint=ck, checkpoint_every=1, **KW)
    except KeyboardInterrupt:
        pass
    saved["killed_at"] = int(load_checkpoint(ck)["stage_step"]) if ctx.is_main else None
    distributed.barrier()
    resumed = MLP(2, 1, width=12, depth=2, activation=Sine(3.0), first_omega=2.0, seed=7).double()
    train(Poisson2D(), resumed, stages=_resume_stages(), checkpoint=ck, resume=ck, **KW)
    saved["full"], saved["resumed"] = _params(full), _params(resumed)
    torch.save(saved, out / f"rank{ctx.rank}.pt")
    distributed.shutdown()


def _close(a: list, b: list, rtol: float = 1e-12) -> None:
    for p, q in zip(a, b, strict=True):
        err = float((p - q).norm() / q.norm())
        assert err <= rtol, f"relative difference {err:.2e} > {rtol:g}"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, launch_ranks):
    out = tmp_path_factory.mktemp("gn")
    launch_ranks(__file__, out, WORLD)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_take_the_union_step(ranks, name):
    options = CASES[name]
    a, b = ranks
    for steps in range(1, STEPS + 1):
        # the ranks stay in step, bit for bit
        for p, q in zip(a[f"{name}/{steps}"], b[f"{name}/{steps}"], strict=True):
            assert torch.equal(p, q)
        single = _net()
        r_single = train(_Union(), single, stages=[GaussNewton(steps, **options)], **KW)
        _close(a[f"{name}/{steps}"], _params(single))
    # each rank has its own points' generator, and all share the sketch's
    (gen_a, sketch_a), (gen_b, sketch_b) = a[f"{name}/generators"], b[f"{name}/generators"]
    assert torch.equal(sketch_a, sketch_b) and not torch.equal(gen_a, gen_b)
    # the search decided alike, and the logged loss is the union's
    history = a[f"{name}/history"]
    assert [row["accepted"] for row in history] == [1, 0, 1]
    for row, ref in zip(history, r_single.history, strict=True):
        assert row["accepted"] == ref["accepted"]
        for key in ("loss", "pde", "boundary", "lambda", "mu"):
            assert row[key] == pytest.approx(ref[key], rel=1e-10), key


@pytest.mark.timeout(120)
def test_rank_products_are_the_union_products(ranks):
    lin = linearize(_Union(), _net(), {k: v.double() for k, v in _Union().sample(BATCH, None).items()},
                    {"boundary": 3.0})
    J = lin.materialize()
    V = torch.randn(lin.n_cols, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for r in ranks:
        got = r["products"]
        _close([got["JtJV"], got["diag"]], [J.T @ (J @ V), (J * J).sum(0)])
        assert got["loss"] == pytest.approx(float(lin.r @ lin.r), rel=1e-12)
        assert got["nystrom"]


@pytest.mark.timeout(120)
def test_descents_spanning_the_ranks_refuse(ranks):
    refused = ranks[0]["refused"]
    assert "dual descent does not run under torchrun: J J^T" in refused["dual"]
    assert "sketched descent does not run under torchrun" in refused["sketched"]
    for message in refused.values():
        assert message.startswith("GaussNewton under torchrun (2 processes): ")
    assert 'form="dual" does not run under torchrun' in refused["{'name': 'dense', 'form': 'dual'}"]


@pytest.mark.timeout(120)
def test_resume_inside_the_stage_is_bit_identical(ranks):
    a, b = ranks
    assert 0 < a["killed_at"] < 5  # killed inside the stage, after a checkpoint in it
    # steps after the kill were taken: the sketch and the points came back from the checkpoint
    assert sum(row["accepted"] for row in a["full_history"][a["killed_at"]:]) >= 2
    for r in ranks:
        for p, q in zip(r["resumed"], r["full"], strict=True):
            assert torch.equal(p, q)
    for p, q in zip(a["full"], b["full"], strict=True):
        assert torch.equal(p, q)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
