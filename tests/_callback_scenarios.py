"""Seeded training runs whose histories pin the training loop bit for bit.

``tests/data/callback_loop_histories.json`` holds the histories these runs produced with
the monolithic ``train()`` of commit a3a7359 (before the loop of callbacks), written by
``python tests/_callback_scenarios.py --record``; ``tests/test_callbacks.py`` runs them
again through today's loop and compares every value exactly (the wall-clock columns
"time" and "step_time" aside). Float64 networks, one thread: the pinned values are
those of this CPU build of torch; a different torch or BLAS may move the last bits, and
the file is then re-recorded from the commit above.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

from pinn_sine import MaxAbs, Stall, train
from pinn_sine.nets import MLP, Sine
from pinn_sine.observations import synthetic
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.optim.conformance import interrupting
from pinn_sine.problems import Poisson2D, Wave1D
from pinn_sine.weighting import CausalWeights, GradNormWeights

DATA = Path(__file__).parent / "data" / "callback_loop_histories.json"
#: columns that measure wall time, not the computation
CLOCK_COLUMNS = ("time", "step_time")


def rows(history) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in CLOCK_COLUMNS} for row in history]


def _net(seed=0):
    return MLP(2, 1, 8, 2, seed=seed, activation=Sine(3.0)).double()


def _stages():
    return [Adam(30, lr=1e-2), LBFGS(20, batch=48, chunk=5), GaussNewton(8, batch=40)]


def _reference():
    return Poisson2D().reference(resolution=17)


def stages_with_reference(**extra):
    """Adam, L-BFGS and Gauss-Newton with a reference, a second metric, evaluations."""
    return train(Poisson2D(), _net(), stages=_stages(), batch=32, seed=0, progress=False, log_every=5,
                 eval_every=10, reference=_reference(), metrics=[MaxAbs()], stall=None, **extra)


def time_limit(**extra):
    """A time limit reached at the first step: the step is logged and evaluated, the run
    ends there."""
    return train(Poisson2D(), _net(), stages=_stages(), batch=32, seed=0, progress=False, log_every=5,
                 eval_every=10, reference=_reference(), time_limit=1e-9, stall=None, **extra)


def stall(**extra):
    """L-BFGS stalls (the stall test of tests/test_metrics_stall.py), Adam follows."""
    return train(Poisson2D(), _net(), stages=[LBFGS(300, chunk=5), Adam(20, lr=1e-4)], batch=32, seed=0,
                 progress=False, log_every=5, stall=Stall(window=20, rtol=1e-2), **extra)


def weighted_causal(**extra):
    """GradNorm weights and causal weighting on Wave1D."""
    net = MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double()
    return train(Wave1D(modes=((1, 1.0),)), net, stages=[Adam(16, lr=1e-2), LBFGS(4, batch=40, chunk=2)], batch=48,
                 seed=1, progress=False, log_every=2, weights=GradNormWeights(update_every=3, alpha=0.5),
                 causal=CausalWeights(eps=1.0, chunks=4), stall=None, **extra)


def inverse(**extra):
    """An unknown wave speed (the coef_c column, its raw value checkpointed)."""
    p = Wave1D(modes=((1, 1.0),))
    p = p.declare_unknown("c", 1.5, lower=0.5, upper=4.0).observe(synthetic(p, 30, noise=0.0, seed=0))
    net = MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double()
    return train(p, net, stages=[Adam(10, lr=1e-2), GaussNewton(4, batch=40)], batch=48, seed=1, progress=False,
                 log_every=2, stall=None, **extra)


def diverged(**extra):
    """A learning rate far too large: the growth guard stops the run (TrainingDiverged)."""
    from pinn_sine.train import TrainingDiverged

    try:
        train(Poisson2D(), _net(), stages=[Adam(200, lr=0.5, schedule="constant")], batch=32, seed=0,
              progress=False, log_every=1, divergence=1.5, stall=None, **extra)
    except TrainingDiverged as err:
        return err.result
    raise AssertionError("the run did not diverge")


def resumed(tmp, **extra):
    """stages_with_reference killed inside L-BFGS (a checkpoint every 7 steps), resumed."""
    ck = Path(tmp) / "resume.pt"
    killed = interrupting(Poisson2D)(45)
    kw = dict(stages=_stages(), batch=32, seed=0, progress=False, log_every=5, eval_every=10,
              reference=_reference(), metrics=[MaxAbs()], stall=None, checkpoint=ck, checkpoint_every=7)
    try:
        train(killed, _net(), **kw, **extra)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the killed run was not killed")
    return train(Poisson2D(), _net(seed=5), **{**kw, "resume": ck}, **extra)


SCENARIOS = {"stages_with_reference": stages_with_reference, "time_limit": time_limit, "stall": stall,
             "weighted_causal": weighted_causal,
             "inverse": inverse, "diverged": diverged}


def summary(result) -> dict:
    """What a scenario pins: the history (clock columns aside) and the result's fields."""
    return {"history": rows(result.history), "final": result.final, "final_losses": result.final_losses,
            "steps_done": result.steps_done, "steps_planned": result.steps_planned,
            "stop_reason": result.stop_reason, "stop_message": result.stop_message, "metrics": result.metrics,
            "stalls": result.stalls, "coefficients": result.coefficients,
            "timing_keys": sorted(result.timings)}


def machine() -> dict:
    """What the recorded values depend on besides the code: torch's version and the CPU
    capability its kernels dispatch on (a float sum in AVX2 and AVX512 kernels can round
    differently). The tests compare bit for bit only on the machine kind that recorded."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def blas() -> list[str]:
    """The BLAS/LAPACK builds numpy and scipy call and the CPU kernels they chose (e.g.
    "openblas 0.3.31 Haswell"): the Gauss-Newton solve and the error columns go through
    them, and OpenBLAS picks its kernels by the CPU model, which torch's capability
    ("AVX512" on AMD and Intel alike) does not tell apart."""
    from threadpoolctl import threadpool_info

    return sorted({f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
                   if i.get("user_api") == "blas"})


def canonical(value):
    """``value`` as the JSON file holds it (floats round-trip exactly through repr)."""
    return json.loads(json.dumps(value))


def record() -> None:
    import tempfile

    torch.set_num_threads(1)
    out = {name: summary(run()) for name, run in SCENARIOS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        out["resumed"] = summary(resumed(tmp))
    assert not any(isinstance(v, float) and not math.isfinite(v) for s in out.values() for r in s["history"]
                   for v in r.values())
    out["_machine"] = machine()
    out["_blas"] = blas()
    text = json.dumps(out, indent=1, sort_keys=False) + "\n"
    tmp_path = DATA.with_suffix(".json.tmp")
    tmp_path.write_text(text)
    tmp_path.replace(DATA)  # atomic: a reader never sees half a file
    print(f"wrote {DATA} ({len(text)} bytes)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/_callback_scenarios.py --record")
    record()
