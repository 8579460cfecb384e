"""``check_stage``: the conformance suite every optimizer stage passes, as
:func:`~pinn_sine.problems.check_problem` is for problems. The tests run it over
:data:`STAGE_CASES` (every stage, every search x descent combination of the
Gauss-Newton stage and its solvers), so a new stage or part added there is checked with
no new test code.

The checks, on a small float64 Poisson2D case (a SIREN 8 x 2, 32 points):
    "describe": ``describe()`` is JSON and survives a JSON round trip; the stage
        rebuilt from it describes itself the same;
    "state": after two steps, the stage's ``state_dict()`` holds only tensors and plain
        values and survives ``torch.save`` / ``torch.load(weights_only=True)``;
    "resume": a run killed after its ``kill_after``-th loss evaluation and resumed from
        its checkpoint ends with the same weights and history, bit for bit, as the run
        that was not interrupted;
    "descent": no logged step raises the training loss (a stage whose steps may: Adam,
        is exempt; it is checked to lower it over the run);
    "dense": a Gauss-Newton descent's step at a given damping agrees with the dense
        damped solve on the same linearization (CG to its tolerance; a sketched step on
        all rows and columns exactly); a descent whose ``solves_damped_system`` is False
        (a sketch with subsets) gives a descent direction.
"""
from __future__ import annotations

import io
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .descents import Descent
from .gauss_newton import GaussNewton
from .solvers import CG
from .stages import LBFGS, Adam, Stage


class StageConformanceError(AssertionError):
    """A stage breaks the stage contract; the message says which check and why."""


def _gn(**kw) -> Callable[[], Stage]:
    return lambda: GaussNewton(6, batch=32, **kw)


#: every stage and Gauss-Newton combination the conformance tests run: id -> factory
STAGE_CASES: dict[str, Callable[[], Stage]] = {
    "adam": lambda: Adam(12, lr=1e-2),
    "lbfgs": lambda: LBFGS(9, chunk=3),
    "gn": _gn(),
    "gn-line-search": _gn(line_search=True),
    "gn-dense-torch": _gn(solver={"name": "cholesky", "backend": "torch"}),
    "gn-dense-cg-solver": _gn(solver={"name": "cg", "rtol": 1e-12, "max_iter": 500}),
}
for _search in ("nielsen", "trust_region", "backtracking"):
    for _descent in ({"name": "dense"}, {"name": "cg", "preconditioner": "nystrom", "rank": 20},
                     {"name": "cg", "preconditioner": "diagonal"}, {"name": "cg", "preconditioner": "none"},
                     {"name": "dual"}, {"name": "dual", "momentum": 0.5}, {"name": "sketched", "rows": 40, "cols": 60}):
        _id = f"gn-{_search}-{_descent['name']}" + "".join(f"-{v}" for k, v in _descent.items() if k != "name")
        STAGE_CASES.setdefault(_id, _gn(search=_search, descent=dict(_descent)))
# Marquardt's column scaling (lambda D, its running maximum D in the state), primal and dual
STAGE_CASES["gn-dense-columns"] = _gn(descent={"name": "dense", "scaling": "columns"})
STAGE_CASES["gn-dense-columns-dual"] = _gn(descent={"name": "dense", "form": "dual", "scaling": "columns"})
# the geodesic acceleration (one more residual evaluation per step), alone and with lambda D
STAGE_CASES["gn-dense-acceleration"] = _gn(descent={"name": "dense", "acceleration": True})
STAGE_CASES["gn-dense-acceleration-columns-dual"] = _gn(descent={"name": "dense", "form": "dual", "scaling": "columns",
                                                                 "acceleration": True})
# a floor on the Nielsen damping (the rule stops at it; in the description only when set)
STAGE_CASES["gn-min-damping"] = _gn(search={"name": "nielsen", "damping": 1e-2, "min_damping": 1e-3})
STAGE_CASES["gn-dual-cg-solver"] = _gn(descent="dual", solver={"name": "cg", "rtol": 1e-12, "max_iter": 500})
# the first batch drawn by the residual (RAD), its pool in the state; no redraw within the 6 steps, since a
# redraw may raise the logged loss (another batch), which "descent" refuses: tests/test_burgers_adaptive.py
# kills and resumes across redraws
STAGE_CASES["gn-adaptive-rad"] = _gn(resample_every=6, adaptive={"name": "rad", "k": 1.0, "c": 1.0, "pool_factor": 4})
STAGE_CASES["gn-mixed-dense"] = _gn(descent={"name": "mixed", "inner": "dense", "float32_steps": 3})
STAGE_CASES["gn-mixed-cg"] = _gn(descent={"name": "mixed", "inner": {"name": "cg", "rank": 20}, "float32_steps": 3})
STAGE_CASES["gn-mixed-none"] = _gn(descent={"name": "mixed", "inner": "dense", "float32_steps": 0})
# the Nystrom sketch reused over accepted steps and CG started from the last direction (both in the state)
STAGE_CASES["gn-cg-reused-warm"] = _gn(descent={"name": "cg", "rank": 20, "refresh_every": 3, "warm_start": True})
del _search, _descent, _id


def _setup(seed: int = 0):
    from ..nets import MLP, Sine
    from ..problems import Poisson2D

    problem = Poisson2D()
    net = MLP(2, 1, 8, 2, seed=seed, activation=Sine(3.0)).double()
    return problem, net


def interrupting(cls: type, method: str = "residuals") -> type:
    """A subclass of the problem class ``cls`` that raises KeyboardInterrupt (a killed
    job) on call number ``stop_after`` (counted from 1) of its ``method``: made as
    ``interrupting(Poisson2D)(stop_after, *args, **kwargs)``. The resume checks of the
    conformance suite and the tests kill runs with it inside any stage."""
    original = getattr(cls, method)

    def __init__(self, stop_after: int, *args, **kwargs):
        cls.__init__(self, *args, **kwargs)
        self.stop_after, self.calls = stop_after, 0

    def interrupted(self, *args, **kwargs):
        self.calls += 1
        if self.calls >= self.stop_after:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    return type(f"Interrupting{cls.__name__}", (cls,), {"__init__": __init__, method: interrupted,
                                                         "__module__": cls.__module__})


def _killed_problem(kill_after: int):
    from ..problems import Poisson2D

    return interrupting(Poisson2D)(kill_after)


def check_stage(make: Callable[[], Stage], *, kill_after: int = 9) -> list[str]:
    """Run the stage conformance checks (module docstring) on the stage ``make()``
    builds (a fresh one per run); raise :class:`StageConformanceError` at the first
    failure, else return the names of the checks run."""
    from ..train import train

    done = []
    stage = make()
    desc = stage.describe()
    try:
        text = json.dumps(desc)
    except TypeError as err:
        raise StageConformanceError(f"{type(stage).__name__}.describe() is not JSON: {err}") from None
    if json.loads(text) != desc:
        raise StageConformanceError(f"{type(stage).__name__}.describe() changes in a JSON round trip: {desc!r}")
    rebuilt = _rebuild(desc)
    if rebuilt is not None and json.loads(json.dumps(rebuilt.describe())) != json.loads(text):
        raise StageConformanceError(f"{type(stage).__name__} rebuilt from its describe() describes itself as "
                                    f"{rebuilt.describe()!r}, not {desc!r}")
    done.append("describe")

    kw = dict(batch=32, seed=0, progress=False, log_every=1, checkpoint_every=1)
    problem, net = _setup()
    s = make()
    s.steps = 2
    train(problem, net, stages=[s], **kw)
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    try:
        torch.load(buf, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure of the safe loader is the finding
        raise StageConformanceError(f"{type(s).__name__}.state_dict() does not load with weights_only=True: "
                                    f"{err}") from None
    done.append("state")

    problem, full = _setup()
    r_full = train(problem, full, stages=[make()], **kw)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "ck.pt"
        _, killed = _setup()
        try:
            train(_killed_problem(kill_after), killed, stages=[make()], checkpoint=ck, **kw)
        except KeyboardInterrupt:
            pass
        else:
            raise StageConformanceError(f"the run was not interrupted after {kill_after} loss evaluations; raise "
                                        "kill_after's stage steps or lower kill_after")
        _, resumed = _setup(seed=7)  # another init: everything must come from the checkpoint
        r_res = train(problem, resumed, stages=[make()], resume=ck, checkpoint=ck, **kw)
    a, b = full.state_dict(), resumed.state_dict()
    if not all(torch.equal(a[k], b[k]) for k in a):
        raise StageConformanceError(f"{type(stage).__name__} ({desc}): the resumed run ends with other weights")
    drop = ("time", "step_time")
    clean = [[{k: v for k, v in row.items() if k not in drop} for row in r.history] for r in (r_full, r_res)]
    if not _same(clean[0], clean[1]):
        raise StageConformanceError(f"{type(stage).__name__} ({desc}): the resumed run's history differs")
    done.append("resume")

    losses = [row["loss"] for row in r_full.history]
    if stage.name == "adam":
        if not losses[-1] < losses[0]:
            raise StageConformanceError(f"Adam did not lower the loss over {len(losses)} steps: {losses}")
    else:
        rises = [(i, a, b) for i, (a, b) in enumerate(zip(losses, losses[1:])) if b > a * (1 + 1e-12)]
        if rises:
            raise StageConformanceError(f"{type(stage).__name__} ({desc}) raised the loss at logged steps {rises}")
    done.append("descent")

    if isinstance(stage, GaussNewton):
        check_descent(stage.descent, stage.solver)
        done.append("dense")
    return done


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _rebuild(desc: dict) -> Stage | None:
    try:
        from .spec import stage_from_description
    except ImportError:  # the spec module is optional here
        return None
    return stage_from_description(desc)


def check_descent(descent: Descent, solver) -> None:
    """The descent's step at a damping lambda on a small linearization against the dense
    damped solve (module docstring, "dense")."""
    from ..derivatives.linearization import linearize

    problem, net = _setup()
    batch = {k: v.double() for k, v in problem.sample(24, torch.Generator().manual_seed(1)).items()}
    lin = linearize(problem, net, batch, {"boundary": 2.0})
    J = lin.materialize()
    lam = 1e-2 * float((J * J).sum()) / J.shape[1]
    expected = -torch.linalg.solve(J.T @ J + lam * torch.eye(J.shape[1], dtype=J.dtype), J.T @ lin.r)
    fresh = type(descent)(**{k: v for k, v in descent.describe().items() if k != "name"})
    fresh.start(torch.Generator().manual_seed(0))
    step = fresh.direction(lin, lam, solver)
    d = step.d
    name = f"{type(descent).__name__}({descent.describe()}) with {type(solver).__name__}"
    if not torch.allclose(step.Jd, lin.mv(d), rtol=1e-10, atol=1e-12 * float(step.Jd.abs().max())):
        raise StageConformanceError(f"{name}: the returned J d is not J times the step")
    exact = fresh.solves_damped_system
    if exact and isinstance(solver, CG):  # an iterative solve: the normal equations' residual to its tolerance
        b = J.T @ lin.r
        res = float((J.T @ (J @ d) + lam * d + b).norm() / b.norm())
        if step.lam != lam or res > max(10 * solver.rtol, 1e-9):
            raise StageConformanceError(f"{name}: the step leaves a relative residual {res:.2e} in the damped "
                                        f"normal equations (solver rtol {solver.rtol:g}) at lambda {lam:.3e}")
    elif exact:
        err = float((d - expected).norm() / expected.norm())
        if step.lam != lam or err > 1e-9:
            raise StageConformanceError(f"{name}: the step differs from the dense damped solve by {err:.2e} "
                                        f"(relative; tolerance 1e-9) at lambda {lam:.3e} (it used {step.lam:.3e})")
    elif not float(lin.r @ step.Jd) < 0:
        raise StageConformanceError(f"{name}: the step is not a descent direction (r.Jd >= 0)")


__all__ = ["STAGE_CASES", "check_stage", "check_descent", "StageConformanceError", "interrupting"]
