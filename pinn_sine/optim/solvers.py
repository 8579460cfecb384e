"""Linear solvers of the Gauss-Newton stage (:class:`~pinn_sine.optim.GaussNewton`'s
``solver=``): how a descent solves its symmetric positive definite system.

* :class:`Cholesky` factors an explicit matrix: SciPy's LAPACK on the CPU (a symmetric
  rank-k update builds J^T J or J J^T at half the flops of a product), torch.linalg
  elsewhere; the backend is chosen once, when the stage starts.
* :class:`CG` runs (preconditioned) conjugate gradients on an operator: the
  matrix-free descents' solver, and usable on an explicit matrix too.

A solver is a small object with ``name``, ``describe()`` and the methods its descents
call: ``damped(J, r, lam, form)`` (the damped least-squares step of an explicit J),
``factored(J, lam, form)`` (the same step as a map r -> d, factored once) and
``solve(op, b, preconditioner)`` (an SPD system given as a product).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .stages import check_every, check_positive_float

#: the normal-equation forms of the dense damped step
FORMS = ("auto", "primal", "dual")


class Part:
    """What every part of the Gauss-Newton stage (search, descent, linear solver) has: a
    ``name`` (its registry key) and ``describe()``, the JSON dict {"name": ..., option:
    value} that rebuilds it (``GaussNewton(descent=part.describe())``)."""

    name = "part"

    def describe(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({body})"


class LinearSolver(Part):
    """Base class of the solvers (module docstring)."""

    name = "solver"

    def prepare(self, device: torch.device) -> None:
        """Called once when the stage starts, with the parameters' device."""

    def damped(self, J: Tensor, r: Tensor, lam: float, form: str = "auto") -> Tensor | None:
        """d solving (J^T J + lam I) d = -J^T r (primal, p x p) or, the same d,
        d = -J^T (J J^T + lam I)^{-1} r (dual, N x N); "auto" takes the smaller. None when
        the matrix does not factor in this precision."""
        step = self.factored(J, lam, form)
        return None if step is None else step(r)

    def factored(self, J: Tensor, lam: float, form: str = "auto") -> Callable[[Tensor], Tensor] | None:
        """The map r -> d of :meth:`damped` for this J and lambda, the matrix factored
        once (a descent that solves for two right-hand sides, such as the geodesic
        acceleration, pays for one factorisation); None when it does not factor. A
        solver that implements only :meth:`damped` gets a map that calls it for each
        right-hand side."""
        if type(self).damped is LinearSolver.damped:
            raise NotImplementedError(f"{type(self).__name__} implements neither factored() nor damped().")
        return lambda r: self.damped(J, r, lam, form)

    def solve(self, op: Callable[[Tensor], Tensor], b: Tensor, *, matrix: Tensor | None = None,
              preconditioner: Callable[[Tensor], Tensor] | None = None,
              x0: Tensor | None = None) -> tuple[Tensor | None, dict]:
        """x with A x = b for the SPD A given as the product ``op`` (and, where formed,
        as ``matrix``); None when it cannot be solved in this precision. ``x0``: a
        starting guess an iterative solver may use (a direct one ignores it)."""
        raise NotImplementedError


class Cholesky(LinearSolver):
    """Cholesky factorisation of the explicit SPD matrix.

    Args:
        backend: "lapack" (SciPy: syrk + potrf/potrs, CPU only), "torch"
            (torch.linalg.cholesky_ex, any device) or "auto" (lapack on the CPU).
    """

    name = "cholesky"
    BACKENDS = ("auto", "lapack", "torch")

    def __init__(self, backend: str = "auto"):
        if backend not in self.BACKENDS:
            raise ValueError(f'Cholesky: invalid backend "{backend}". Must be one of {list(self.BACKENDS)}.')
        self.backend = backend
        self._use = None

    def prepare(self, device: torch.device) -> None:
        if self.backend == "lapack" and device.type != "cpu":
            raise ValueError(f'Cholesky(backend="lapack") runs on the CPU; the parameters are on {device}. Use '
                             'backend="torch" or "auto".')
        self._use = self.backend if self.backend != "auto" else ("lapack" if device.type == "cpu" else "torch")

    def _backend(self, t: Tensor) -> str:
        if self._use is None:
            self.prepare(t.device)
        return self._use

    def factored(self, J: Tensor, lam: float, form: str = "auto") -> Callable[[Tensor], Tensor] | None:
        fn = damped_factor_lapack if self._backend(J) == "lapack" else damped_factor_torch
        return fn(J, lam, form)

    def solve(self, op, b, *, matrix=None, preconditioner=None, x0=None):
        if matrix is None:
            raise ValueError("Cholesky factors an explicit matrix; this descent gives the system as a product "
                             "only (matrix-free). Use solver=\"cg\".")
        if self._backend(matrix) == "lapack":
            import numpy as np
            from scipy.linalg import lapack

            A = matrix.detach().numpy().copy()
            potrf, potrs = lapack.get_lapack_funcs(("potrf", "potrs"), (A,))
            L, info = potrf(A, lower=1, overwrite_a=1, clean=0)
            if info:
                return None, {}
            x, _ = potrs(L, np.ascontiguousarray(b.detach().numpy()), lower=1)
            return torch.from_numpy(x), {}
        L, info = torch.linalg.cholesky_ex(matrix)
        if int(info):
            return None, {}
        return torch.cholesky_solve(b.reshape(b.shape[0], -1), L).reshape(b.shape), {}

    def describe(self) -> dict:
        return {"name": self.name, "backend": self.backend}


class CG(LinearSolver):
    """Conjugate gradients, preconditioned when the descent supplies a preconditioner:
    stops when ||b - A x|| <= rtol ||b|| or after ``max_iter`` iterations (the last
    iterate is then used: an inexact Gauss-Newton step, still a descent direction).

    Args:
        rtol: relative residual tolerance (> 0).
        max_iter: iterations at most (>= 1).
    """

    name = "cg"

    def __init__(self, rtol: float = 1e-6, max_iter: int = 200):
        self.rtol = check_positive_float(rtol, "rtol", "CG")
        self.max_iter = check_every(max_iter, "max_iter", "CG")

    def factored(self, J: Tensor, lam: float, form: str = "auto") -> Callable[[Tensor], Tensor]:
        """The map r -> d by CG (nothing to factor: each right-hand side runs CG)."""
        n, p = J.shape
        if form == "dual" or (form == "auto" and n < p):
            def dual(r: Tensor) -> Tensor:
                y, _ = self.solve(lambda u: J @ (J.T @ u) + lam * u, r)
                return -(J.T @ y)
            return dual
        return lambda r: self.solve(lambda v: J.T @ (J @ v) + lam * v, -(J.T @ r))[0]

    def solve(self, op, b, *, matrix=None, preconditioner=None, x0=None):
        return conjugate_gradients(op, b, preconditioner, rtol=self.rtol, max_iter=self.max_iter, x0=x0)

    def describe(self) -> dict:
        return {"name": self.name, "rtol": self.rtol, "max_iter": self.max_iter}


def conjugate_gradients(op: Callable[[Tensor], Tensor], b: Tensor, preconditioner=None, *, rtol: float,
                        max_iter: int, x0: Tensor | None = None) -> tuple[Tensor, dict]:
    """Preconditioned CG for SPD ``op`` from x = ``x0`` (default 0; a guess that leaves a
    larger residual than 0 does is dropped); returns x and {"iterations",
    "relative_residual"} (relative to ||b||)."""
    x = torch.zeros_like(b)
    r = b.clone()
    bnorm = float(b.norm())
    if bnorm == 0 or not math.isfinite(bnorm):
        return x, {"iterations": 0, "relative_residual": 0.0 if bnorm == 0 else float("nan")}
    if x0 is not None and x0.shape == b.shape and bool(torch.isfinite(x0).all()):
        r0 = b - op(x0)
        if float(r0.norm()) < bnorm:
            x, r = x0.clone(), r0
            if float(r.norm()) / bnorm <= rtol:
                return x, {"iterations": 0, "relative_residual": float(r.norm()) / bnorm}
    z = preconditioner(r) if preconditioner is not None else r
    p = z.clone()
    rz = float(r @ z)
    it, rel = 0, 1.0
    for it in range(1, max_iter + 1):
        Ap = op(p)
        pAp = float(p @ Ap)
        if not pAp > 0:  # lost positive definiteness to rounding: keep the last iterate
            it -= 1
            break
        alpha = rz / pAp
        x.add_(p, alpha=alpha)
        r.sub_(Ap, alpha=alpha)
        rel = float(r.norm()) / bnorm
        if rel <= rtol:
            break
        z = preconditioner(r) if preconditioner is not None else r
        rz_new = float(r @ z)
        p.mul_(rz_new / rz).add_(z)
        rz = rz_new
    return x, {"iterations": it, "relative_residual": rel}


def damped_solve_torch(J: Tensor, r: Tensor, lam: float, form: str = "auto") -> Tensor | None:
    """The damped Gauss-Newton step by torch.linalg (any device); None if the matrix
    does not factor."""
    step = damped_factor_torch(J, lam, form)
    return None if step is None else step(r)


def damped_factor_torch(J: Tensor, lam: float, form: str = "auto") -> Callable[[Tensor], Tensor] | None:
    """The map r -> d of the damped step for this J and lambda, factored once by
    torch.linalg (the primal J^T J + lambda I or the dual J J^T + lambda I); None if
    the matrix does not factor."""
    n, p = J.shape
    primal = form == "primal" or (form == "auto" and n >= p)
    A = J.T @ J if primal else J @ J.T
    A.diagonal().add_(lam)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info):
        return None
    if primal:
        return lambda r: -torch.cholesky_solve((J.T @ r).unsqueeze(1), L).squeeze(1)
    return lambda r: -(J.T @ torch.cholesky_solve(r.unsqueeze(1), L).squeeze(1))


def damped_solve_lapack(J: Tensor, r: Tensor, lam: float, form: str = "auto") -> Tensor | None:
    """The same step on the CPU through SciPy's BLAS/LAPACK: a symmetric rank-k update
    (syrk, half the flops of J^T J) and Cholesky (potrf/potrs), used because torch's
    CPU matmul and Cholesky were the slower path where it was tuned (benchmarks/optimizers.py
    times the stage)."""
    step = damped_factor_lapack(J, lam, form)
    return None if step is None else step(r)


def damped_factor_lapack(J: Tensor, lam: float, form: str = "auto") -> Callable[[Tensor], Tensor] | None:
    """:func:`damped_factor_torch` through SciPy's syrk and potrf (the map's solves:
    potrs)."""
    import numpy as np
    from scipy.linalg import blas, lapack

    Jn = J.detach().numpy()
    n, p = Jn.shape
    primal = form == "primal" or (form == "auto" and n >= p)
    syrk = blas.get_blas_funcs("syrk", (Jn,))
    A = syrk(1.0, Jn, trans=1 if primal else 0, lower=1)  # the lower triangle of J^T J or J J^T
    A[np.diag_indices_from(A)] += lam
    potrf, potrs = lapack.get_lapack_funcs(("potrf", "potrs"), (A,))
    L, info = potrf(A, lower=1, overwrite_a=1, clean=0)
    if info:
        return None

    def step(r: Tensor) -> Tensor:
        rn = r.detach().numpy()
        if primal:
            x, _ = potrs(L, Jn.T @ rn, lower=1)
            return torch.from_numpy(-x)
        y, _ = potrs(L, rn, lower=1)
        return torch.from_numpy(-(Jn.T @ y))
    return step


SOLVERS = {"cholesky": Cholesky, "cg": CG}
