"""Descents of the Gauss-Newton stage (:class:`~pinn_sine.optim.GaussNewton`'s
``descent=``): how the step d is computed from the linearization (r, J) and the damping
lambda. Each solves, exactly or approximately, the damped Gauss-Newton problem

    min_d ||r + J d||^2 + lambda ||d||^2,   i.e.   (J^T J + lambda I) d = -J^T r.

* :class:`Dense` ("dense"): J formed, the primal (p x p) or dual (N x N) normal
  equations factored; N p^2 per step. The stage's default, as before the descents.
* :class:`NormalCG` ("cg"): matrix-free conjugate gradients on the primal normal
  equations, each iteration one J v and one J^T u (a forward and a backward pass of the
  network on the batch), preconditioned by diag(J^T J) + lambda or by a randomized
  Nystrom approximation of J^T J (Frangella, Tropp & Udell 2023; for PINNs, Jnini,
  Vella & Zeinhofer 2024, Bioli, Marcati & Sangalli 2025).
* :class:`Dual` ("dual"): d = -J^T (J J^T + lambda I)^{-1} r with J J^T formed from the
  factors, never J (the Woodbury form, for N << p); with ``momentum`` > 0 the SPRING
  step (Goldshlager, Abrahamsen & Lin 2024; Guzman-Cordero, Dangel et al. 2025):
  d_k = mu d_{k-1} + J^T (J J^T + lambda I)^{-1} (-r - mu J d_{k-1}).
* :class:`Sketched` ("sketched"): a step in a random subspace of ``cols`` parameters
  from a random subset of ``rows`` residuals, both rescaled so the sketched normal
  equations are unbiased (the doubly sketched Gauss-Newton of Webb, Jerad & Cartis
  2026); the small system is factored.

A descent is a small class (module :mod:`pinn_sine.optim.gauss_newton`, "Writing a
part"): ``direction(lin, lam, solver) -> Direction``, ``frobenius2(lin)`` (||J||_F^2,
the damping's scale), ``memory(...)``, ``update(accepted, alpha)`` after the search,
``state_dict``/``load_state_dict``, ``describe``; ``split_rows()`` where it runs under
``torchrun``.

Under ``torchrun`` (rows split over the ranks) ``lin`` is a
:class:`~pinn_sine.derivatives.linearization.RankLinearization`: r and J v are the rank's
own rows, J^T u and diag(J^T J) are summed over the ranks, and ``lin.sum_over_ranks``
completes any other sum over rows. "dense" then always solves the primal system with
J^T J and J^T r summed over the ranks (p x p), and "cg" works unchanged (its vectors are
p-vectors, the same on every rank; the Nystrom sketch is drawn from a generator seeded
alike on all ranks); "dual" (J J^T spans the ranks) and "sketched" (a row sample per
rank) refuse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .solvers import FORMS, LinearSolver, Part
from .stages import check_every, check_positive_float

PRECONDITIONERS = ("nystrom", "diagonal", "none")


@dataclass
class Direction:
    """A descent's step: d (p,), J d (N,), the damping lambda it used (raised where the
    system did not factor) and values for the history (e.g. CG iterations). ``Jd`` is
    the change of r the step's model predicts, the search's model being
    ||r + Jd||^2: J d for a Gauss-Newton step, a second-order term added for a step
    with a curvature correction (the dense descent's geodesic acceleration)."""

    d: Tensor
    Jd: Tensor
    lam: float
    info: dict = field(default_factory=dict)


class Descent(Part):
    """Base class of the descents (module docstring)."""

    name = "descent"
    #: the solver "auto" picks
    default_solver = "cholesky"
    #: solvers the descent works with
    solvers = ("cholesky", "cg")
    #: True once :meth:`split_rows` accepted rows split over ranks
    split = False
    #: whether the step solves the damped system (the stage conformance suite compares
    #: it with the dense solve; otherwise it checks a descent direction only)
    solves_damped_system = True

    def start(self, generator: torch.Generator) -> None:
        """Called when the stage starts; ``generator`` draws the descent's sketches (its
        state is checkpointed with the stage's)."""
        self.generator = generator

    def split_rows(self) -> None:
        """Called instead of nothing when the stage runs under ``torchrun``: the
        linearization's rows are split over the ranks (module docstring). A descent that
        works so sets ``split``; the default refuses with a ValueError saying why."""
        raise ValueError(f"the {self.name} descent does not run with the rows split over processes (torchrun); "
                         'use descent="dense" or "cg".')

    def frobenius2(self, lin) -> float:
        """||J||_F^2 (the damping is relative to ||J||_F^2 / p), from diag(J^T J), which
        the step's other parts reuse (the Jacobi preconditioner)."""
        return float(lin.cached("normal_diagonal", lin.normal_diagonal).sum())

    def direction(self, lin, lam: float, solver: LinearSolver) -> Direction:
        raise NotImplementedError

    def update(self, accepted: bool, alpha: float) -> None:
        """Called after the search with what it did with the last direction."""

    def memory(self, rows: int, p: int, factor_bytes: int, item: int) -> int:
        """Bytes a step needs beyond the network: the estimate the stage checks against
        its ``max_memory`` before starting."""
        return factor_bytes + 8 * p * item

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass



def _retry(solve, lam: float, known_to_fail=None):
    """``solve(lam)`` with lambda raised tenfold until the system factors in this
    precision; returns (result, lam, the dampings tried that did not factor). A damping
    for which ``known_to_fail(lam)`` is true is raised without a solve."""
    failed = []
    while True:
        if known_to_fail is None or not known_to_fail(lam):
            out = solve(lam)
            if out is not None:
                return out, lam, failed
            failed.append(lam)
        lam = max(lam * 10, 1e-300)


class Dense(Descent):
    """J formed and the damped normal equations solved by the solver (Cholesky: the
    smaller of the primal p x p and dual N x N systems). Under ``torchrun`` each rank
    forms its own rows J_q and the primal system is solved with J^T J = sum_q J_q^T J_q
    and J^T r = sum_q J_q^T r_q (all-reduced, p x p), whatever the batch size.

    ``scaling="columns"`` damps each parameter by its own curvature (Marquardt's
    scaling, with More's running maximum):

        (J^T J + lambda D) d = -J^T r,   D = diag(max_k diag(J_k^T J_k)),

    solved as the isotropic system of J D^{-1/2} (unit-norm columns, so lambda is the
    search's relative damping mu itself) and mapped back, d = D^{-1/2} d~. Where a few
    columns are much weaker than the rest (a velocity model's 36 coefficients beside a
    network's 2472 weights, 35x smaller in squared norm), isotropic damping
    lambda ||J||_F^2 / p holds those back 35x more than their curvature does; D damps
    every column alike. D is the largest diagonal met so far (a redrawn batch may lower
    a column for a while; the running maximum keeps the step scale-invariant and
    bounded) and is kept in the checkpoint. Columns with no curvature yet (D = 0) get
    the mean of D. Measured, it has not paid yet: level with lambda I on the
    four-source velocity inversion, 2x worse on Poisson2D at 10 minutes (README).

    ``acceleration=True`` adds the geodesic acceleration of Transtrum & Sethna (2012,
    "Improvements to the Levenberg-Marquardt algorithm for nonlinear least-squares
    minimization"): the Levenberg-Marquardt step v is the velocity of a path through
    parameter space, and its second-order correction along the path is

        a = -(J^T J + lambda D)^{-1} J^T r_vv,
        r_vv = (2 / h) [ (r(theta + h v) - r(theta)) / h - J v ]   (h = 0.1),

    r_vv the residual's second directional derivative along v (one more forward pass on
    the batch, :meth:`~pinn_sine.derivatives.linearization.Linearization.residual_at`);
    the step is v + a / 2, solved with the same factorisation. Where the residual left
    lies in directions of tiny curvature in a curved valley (late Gauss-Newton on a
    small network: the Jacobian's singular values spread over 17 decades and the
    residual sits in those 1e-8 - 1e-6 of the largest), a plain step long enough to
    reduce it leaves the linear model and is rejected, so the damping stays high and
    each step gains little; the corrected step follows the valley's curve. Where
    2 ||a|| / ||v|| > ``max_ratio`` (the correction is not small: the expansion is not
    to be trusted) the step is v alone. The history records the ratio
    ("acceleration") and whether a was used ("accelerated"). Measured (README,
    "Geodesic acceleration"): Poisson2D and Helmholtz2D on a 32x2 SIREN reach 1.8e-9 and
    1.5e-9 in 10 minutes on one fixed batch, 40-75x below the plain step, at little more
    per step.

    Args:
        form: "auto" (the smaller system; the primal under torchrun), "primal" or "dual"
            (refused under torchrun).
        scaling: "none" (lambda I, as before) or "columns" (lambda D).
        acceleration: add the geodesic acceleration.
        max_ratio: the largest 2 ||a|| / ||v|| for which a is used (Transtrum & Sethna's
            alpha, 0.75).
    """

    name = "dense"
    SCALINGS = ("none", "columns")
    #: the finite-difference step h of r_vv (Transtrum & Sethna's 0.1)
    FD_STEP = 0.1

    def __init__(self, form: str = "auto", scaling: str = "none", acceleration: bool = False,
                 max_ratio: float = 0.75):
        if form not in FORMS:
            raise ValueError(f'Dense: invalid form "{form}". Must be one of {list(FORMS)}.')
        if scaling not in self.SCALINGS:
            raise ValueError(f'Dense: invalid scaling "{scaling}". Must be one of {list(self.SCALINGS)}.')
        if not isinstance(acceleration, bool):
            raise ValueError(f"Dense: acceleration must be True or False, got {acceleration!r}.")
        self.form, self.scaling, self.acceleration = form, scaling, acceleration
        self.max_ratio = check_positive_float(max_ratio, "max_ratio", "Dense")
        # the conformance suite compares the step with the isotropic damped solve
        self.solves_damped_system = scaling == "none" and not acceleration
        self._D: Tensor | None = None  # the running maximum of diag(J^T J) ("columns")
        self._no_factor: float | None = None  # the largest lambda / ||A||_F^2 that did not factor

    def start(self, generator):
        super().start(generator)
        self._D, self._no_factor = None, None

    @staticmethod
    def _J(lin) -> Tensor:
        return lin.cached("jacobian", lin.materialize)

    def split_rows(self):
        if self.form == "dual":
            raise ValueError("the dense descent with form=\"dual\" does not run under torchrun: J J^T (N x N) "
                             "couples the points of every process. Use form=\"primal\" or \"auto\" (the primal "
                             "p x p system, J^T J and J^T r summed over the ranks).")
        self.split = True

    def frobenius2(self, lin) -> float:
        J = self._J(lin)
        if self.scaling == "columns":  # J D^{-1/2}: unit columns where D is this batch's diagonal
            return float(J.shape[1])
        return lin.cached("frobenius2", lambda: float(lin.sum_over_ranks((J * J).sum())))

    def _column_scale(self, diagonal: Tensor) -> Tensor:
        """D^{-1/2}, D the running maximum of the diagonals met (``diagonal`` this one's)."""
        diagonal = diagonal.detach()
        self._D = diagonal.clone() if self._D is None or self._D.shape != diagonal.shape else \
            torch.maximum(self._D.to(diagonal), diagonal)
        D = self._D
        positive = D > 0
        fill = D[positive].mean() if bool(positive.any()) else torch.ones((), dtype=D.dtype, device=D.device)
        return torch.where(positive, D, fill).rsqrt()

    def direction(self, lin, lam, solver):
        J = self._J(lin)
        s = None
        if self.split:
            (step, d), lam, s = self._split_step(lin, J, lam, solver)
        else:
            A = J
            if self.scaling == "columns":
                s = self._column_scale((J * J).sum(0))
                A = J * s

            def factor(l):
                step = solver.factored(A, l, self.form)
                d = None if step is None else step(lin.r)
                return None if d is None else (step, d)

            norm2 = self.frobenius2(lin) if s is None else float(torch.linalg.vector_norm(A)) ** 2
            (step, d), lam = self._retry(factor, lam, norm2)
        if s is not None:
            d = d * s
        Jd = J @ d
        if not self.acceleration:
            return Direction(d, Jd, lam)
        return self._accelerate(lin, J, d, Jd, lam, step, s)

    def _accelerate(self, lin, J: Tensor, v: Tensor, Jv: Tensor, lam: float, step, s: Tensor | None) -> Direction:
        """v + a / 2 with the geodesic acceleration a of the velocity v (class docstring),
        or v alone where 2 ||a|| / ||v|| exceeds ``max_ratio`` or r_vv is not finite."""
        h = self.FD_STEP
        r_vv = (2 / h) * ((lin.residual_at(h * v) - lin.r) / h - Jv)
        a = None
        if bool(torch.isfinite(r_vv).all()):
            a = step(lin.sum_over_ranks(J.T @ r_vv) if self.split else r_vv)
        if a is not None and s is not None:
            a = a * s
        vnorm = float(v.norm())
        ratio = float("inf") if a is None or vnorm == 0 else 2 * float(a.norm()) / vnorm
        if a is None or not ratio <= self.max_ratio:
            return Direction(v, Jv, lam, {"acceleration": ratio, "accelerated": 0})
        # the search's model of the corrected step is second order along the path:
        # r(theta + v + a/2) ~ r + J v + (J a + r_vv) / 2 (the linear model alone would see
        # the correction a, which bends the step back into the valley, as a loss)
        return Direction(v + a / 2, Jv + (J @ a + r_vv) / 2, lam, {"acceleration": ratio, "accelerated": 1})

    def _split_step(self, lin, J: Tensor, lam: float, solver: LinearSolver):
        """The primal step from this rank's rows: J^T J and J^T r summed over the ranks.
        Returns ((step map of a summed J^T r', d~), lam, column scale or None)."""
        sums = lin.sum_over_ranks(torch.cat([J.T @ J, (J.T @ lin.r)[:, None]], 1))
        A, g = sums[:, :-1], sums[:, -1]
        A = (A + A.T) / 2  # the two triangles of J_q^T J_q can round apart
        s = None
        if self.scaling == "columns":  # the union's diagonal: the same D on every rank
            s = self._column_scale(A.diagonal().clone())
            A = A * s[:, None] * s[None, :]

        def factor(l):
            M = A.clone()
            M.diagonal().add_(l)

            def step(Jtr: Tensor) -> Tensor | None:  # the summed J^T r' (unscaled) -> d~
                b = -(Jtr if s is None else Jtr * s)
                return solver.solve(lambda v: A @ v + l * v, b, matrix=M)[0]
            d = step(g)
            return None if d is None else (step, d)

        return (*self._retry(factor, lam, float(A.diagonal().sum())), s)

    def _retry(self, factor, lam: float, scale: float):
        """:func:`_retry` that skips the dampings the steps before found too small to
        factor: the largest relative damping lambda / ||A||_F^2 that did not factor is
        kept (``_no_factor``, descent state), and a damping at or below it is raised
        tenfold without a factorisation. Late in a run, where the search asks for its
        smallest damping at every step, this saves the factorisations that would fail
        again (the damping taken is the one the retries would have reached, or a larger
        one where the system has since become better conditioned)."""
        scale = max(scale, 1e-300)
        out, lam, failed = _retry(factor, lam, lambda l: self._no_factor is not None and l / scale <= self._no_factor)
        if failed:
            self._no_factor = max(self._no_factor or 0.0, failed[-1] / scale)
        return out, lam

    def memory(self, rows, p, factor_bytes, item):
        extra = item * rows * p if self.scaling == "columns" else 0  # the scaled copy of J
        if self.split:
            return item * (rows * p + 5 * p * (p + 1)) + extra  # J^T J, its sum over the ranks, the damped copy
        return item * (rows * p + min(rows, p) ** 2) + extra

    def state_dict(self):
        out = {} if self._D is None else {"D": self._D.detach().cpu()}
        if self._no_factor is not None:
            out["no_factor"] = self._no_factor
        return out

    def load_state_dict(self, state):
        self._D = state.get("D")
        self._no_factor = state.get("no_factor")

    def describe(self):
        out = {"name": self.name, "form": self.form}
        if self.scaling != "none":  # only when set: the runs made before it describe alike
            out["scaling"] = self.scaling
        if self.acceleration:
            out.update(acceleration=True, max_ratio=self.max_ratio)
        return out


class NormalCG(Descent):
    """Matrix-free (preconditioned) conjugate gradients on (J^T J + lambda I) d = -J^T r.

    Preconditioners of J^T J + lambda I:
        "nystrom": P = U (L + lambda) U^T / (l_min + lambda) + (I - U U^T) from the
            randomized Nystrom approximation U L U^T of J^T J of rank ``rank`` (one J V
            and one J^T U with ``rank`` columns each time it is built), applied as
            P^{-1} x = (l_min + lambda) U (L + lambda)^{-1} U^T x + x - U U^T x;
        "diagonal": diag(J^T J) + lambda (Jacobi);
        "none".

    The sketch costs ``rank`` products with J and J^T, more than the CG iterations of a
    step when the rank is large; ``refresh_every=m`` > 1 builds it at the first step and
    then after every m accepted steps, reusing U and L for the trials in between (a
    rejected trial's retry included; 1: a fresh sketch for every direction). Any
    orthonormal U gives a symmetric positive definite P, so a stale sketch only
    preconditions less well; lambda enters at each application. ``warm_start`` starts CG from the last direction computed (after
    a rejected trial: the same system with a larger lambda) instead of 0. Both are kept
    in the checkpoint.

    Args:
        preconditioner: one of :data:`PRECONDITIONERS`.
        rank: the Nystrom sketch's rank (>= 1).
        refresh_every: accepted steps between Nystrom sketches (>= 1; 1: every step).
        warm_start: start CG from the last direction.
    """

    name = "cg"
    default_solver = "cg"
    solvers = ("cg",)

    def __init__(self, preconditioner: str = "nystrom", rank: int = 50, refresh_every: int = 1,
                 warm_start: bool = False):
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f'NormalCG: invalid preconditioner "{preconditioner}". Must be one of '
                             f"{list(PRECONDITIONERS)}.")
        self.preconditioner = preconditioner
        self.rank = check_every(rank, "rank", "NormalCG")
        self.refresh_every = check_every(refresh_every, "refresh_every", "NormalCG")
        if not isinstance(warm_start, bool):
            raise ValueError(f"NormalCG: warm_start must be True or False, got {warm_start!r}.")
        self.warm_start = warm_start
        self._factors: tuple | None = None   # (U, L) of the last Nystrom sketch
        self._age = 0                        # accepted steps since it was built
        self._last: Tensor | None = None     # the last direction computed

    def split_rows(self):
        self.split = True

    def direction(self, lin, lam, solver):
        b = -lin.rmv(lin.r)
        P = None
        if self.preconditioner == "diagonal":
            inv = 1.0 / (lin.cached("normal_diagonal", lin.normal_diagonal) + lam)
            P = lambda x: inv * x  # noqa: E731
        elif self.preconditioner == "nystrom":
            U = None if self._factors is None else self._factors[0]
            if self.refresh_every == 1 or U is None or self._age >= self.refresh_every or U.shape[0] != lin.n_cols \
                    or U.dtype != lin.dtype:  # 1: a fresh sketch for every direction, as before the option
                self._factors = nystrom_factors(lin, min(self.rank, lin.n_cols), self.generator)
                self._age = 0
            P = None if self._factors[0] is None else nystrom_apply(*self._factors, lam)
        x0 = self._last if self.warm_start and self._last is not None and self._last.dtype == b.dtype else None
        d, info = solver.solve(lambda v: lin.rmv(lin.mv(v)) + lam * v, b, preconditioner=P, x0=x0)
        self._last = d
        return Direction(d, lin.mv(d), lam, {"cg_iterations": info.get("iterations", 0),
                                             "cg_residual": info.get("relative_residual", float("nan"))})

    def update(self, accepted, alpha):
        if accepted:
            self._age += 1

    def memory(self, rows, p, factor_bytes, item):
        k = self.rank if self.preconditioner == "nystrom" else 0
        return factor_bytes + item * (8 * p + 3 * p * k + 2 * rows * k)

    def state_dict(self):
        if self.refresh_every == 1 and not self.warm_start:
            return {}  # nothing carries over from one step to the next
        U, L = self._factors if self._factors is not None else (None, None)
        return {"U": U, "L": L, "age": self._age, "last": self._last}

    def load_state_dict(self, state):
        if "age" not in state:
            return
        self._factors = None if state.get("U") is None and state.get("L") is None else (state["U"], state["L"])
        self._age = int(state["age"])
        self._last = state.get("last")

    def describe(self):
        out = {"name": self.name, "preconditioner": self.preconditioner, "rank": self.rank}
        if self.refresh_every != 1 or self.warm_start:  # the defaults keep the description of before
            out.update(refresh_every=self.refresh_every, warm_start=self.warm_start)
        return out


def nystrom_factors(lin, rank: int, generator: torch.Generator) -> tuple:
    """(U, L): the randomized Nystrom approximation U diag(L) U^T of J^T J of rank
    ``rank`` (Frangella, Tropp & Udell 2023, Algorithm 2.1 with the shift nu for
    stability); (None, None) when J^T J is numerically zero on the sketch."""
    p = lin.n_cols
    Omega = torch.randn(p, rank, generator=generator, dtype=torch.float64).to(lin.device, lin.dtype)
    Omega, _ = torch.linalg.qr(Omega)
    Y = lin.rmv(lin.mv(Omega))
    nu = math.sqrt(p) * torch.finfo(Y.dtype).eps * float(Y.norm())
    Y = Y + nu * Omega
    M = Omega.T @ Y
    C, info = torch.linalg.cholesky_ex((M + M.T) / 2)
    if int(info):
        return None, None
    B = torch.linalg.solve_triangular(C, Y.T, upper=False).T
    U, S, _ = torch.linalg.svd(B, full_matrices=False)
    return U, (S * S - nu).clamp_min(0.0)


def nystrom_apply(U: Tensor, L: Tensor, lam: float):
    """The inverse of the Nystrom preconditioner of J^T J + lam I from its factors, as a
    function: x -> (l_min + lam) U (L + lam)^{-1} U^T x + x - U U^T x."""
    scale = (float(L[-1]) + lam) / (L + lam)

    def apply(x: Tensor) -> Tensor:
        Ux = U.T @ x
        return U @ (scale * Ux) + x - U @ Ux

    return apply


def nystrom_preconditioner(lin, lam: float, rank: int, generator: torch.Generator):
    """The inverse of the randomized Nystrom preconditioner of J^T J + lam I, as a
    function (:func:`nystrom_factors`, :func:`nystrom_apply`); None when J^T J is
    numerically zero on the sketch (plain CG)."""
    U, L = nystrom_factors(lin, rank, generator)
    return None if U is None else nystrom_apply(U, L, lam)


class Dual(Descent):
    """The Woodbury (dual) step d = -J^T (J J^T + lambda I)^{-1} r, J J^T from the factors
    (never J): N x N, for batches much smaller than the network. ``momentum`` mu > 0 gives
    SPRING: d = mu d_prev + J^T (J J^T + lambda I)^{-1} (-r - mu J d_prev), d_prev the
    last applied step (kept in the checkpoint).

    Args:
        momentum: mu in [0, 1).
    """

    name = "dual"

    def __init__(self, momentum: float = 0.0):
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"Dual: momentum must be a number in [0, 1), got momentum={momentum!r}.")
        self.momentum = float(momentum)
        self.phi = None
        self._last = None

    def split_rows(self):
        raise ValueError("the dual descent does not run under torchrun: J J^T (N x N) couples the points of every "
                         "process. Use descent=\"dense\" (the primal p x p system, J^T J and J^T r summed over the "
                         "ranks) or \"cg\".")

    def frobenius2(self, lin) -> float:
        K = self._gram(lin)
        return float(K.diagonal().sum())

    @staticmethod
    def _gram(lin) -> Tensor:
        return lin.cached("gram", lin.gram)

    def direction(self, lin, lam, solver):
        K = self._gram(lin)
        rhs = -lin.r
        phi = self.phi if self.momentum > 0 and self.phi is not None else None
        if phi is not None:
            rhs = rhs - self.momentum * lin.mv(phi)

        def solve(l):
            A = K.clone()
            A.diagonal().add_(l)
            y, _ = solver.solve(lambda u: K @ u + l * u, rhs, matrix=A)
            return y

        y, lam, _ = _retry(solve, lam)
        d = lin.rmv(y)
        if phi is not None:
            d = d + self.momentum * phi
        self._last = d
        return Direction(d, lin.mv(d), lam)

    def update(self, accepted, alpha):
        if accepted and self.momentum > 0:
            self.phi = alpha * self._last

    def memory(self, rows, p, factor_bytes, item):
        return factor_bytes + item * (2 * rows * rows + 4 * p)

    def state_dict(self):
        return {"phi": None if self.phi is None else self.phi.detach().cpu()}

    def load_state_dict(self, state):
        phi = state.get("phi")
        self.phi = None if phi is None else phi

    def describe(self):
        return {"name": self.name, "momentum": self.momentum}


class Sketched(Descent):
    """A doubly sketched step: ``rows`` residuals drawn uniformly without replacement
    (scaled by sqrt(N / rows), so A^T A and A^T r are unbiased estimates of J^T J and
    J^T r) and a random subspace of ``cols`` parameters (the step is zero elsewhere);
    the small damped system (A^T A + lambda I) z = -A^T r_S is solved by the solver
    (Cholesky: the smaller of its two forms), and d = P z. A fresh sketch every step.

    Args:
        rows: residuals sampled (None: all).
        cols: parameters the step moves (None: all).
    """

    name = "sketched"

    def __init__(self, rows: int | None = 4096, cols: int | None = 1024):
        self.rows = None if rows is None else check_every(rows, "rows", "Sketched")
        self.cols = None if cols is None else check_every(cols, "cols", "Sketched")

    @property
    def solves_damped_system(self) -> bool:
        return self.rows is None and self.cols is None

    def split_rows(self):
        raise ValueError("the sketched descent does not run under torchrun: its row sample would be drawn from "
                         "each process's residuals separately. Use descent=\"dense\" or \"cg\".")

    def direction(self, lin, lam, solver):
        N, p = lin.n_rows, lin.n_cols
        rows = cols = None
        m, k = N, p
        if self.rows is not None and self.rows < N:
            rows = torch.randperm(N, generator=self.generator)[: self.rows].sort().values.to(lin.device)
            m = self.rows
        if self.cols is not None and self.cols < p:
            cols = torch.randperm(p, generator=self.generator)[: self.cols].sort().values.to(lin.device)
            k = self.cols
        s = math.sqrt(N / m)
        A = lin.submatrix(rows, cols) * s
        rs = (lin.r if rows is None else lin.r[rows]) * s
        z, lam, _ = _retry(lambda l: solver.damped(A, rs, l, "auto"), lam)
        if cols is None:
            d = z
        else:
            d = lin.r.new_zeros(p)
            d[cols] = z
        return Direction(d, lin.mv(d), lam)

    def memory(self, rows, p, factor_bytes, item):
        m = rows if self.rows is None else min(rows, self.rows)
        k = p if self.cols is None else min(p, self.cols)
        return factor_bytes + item * (m * k + min(m, k) ** 2 + 4 * p)

    def describe(self):
        return {"name": self.name, "rows": self.rows, "cols": self.cols}


class MixedPrecision(Descent):
    """A precision schedule around another descent: for its first ``float32_steps``
    directions the inner descent works on a float32 copy of the linearization (the
    factors, r, and J where it is formed: half the bytes, about twice the GEMM rate on
    the CPU), later ones in the network's precision. A float32 step is cast back and
    its J d recomputed in full precision, so the search's model and the accepted loss are
    exact; only the step is approximate (float32 normal equations keep about half of
    float32's digits, which is enough far from the solution and not near it).

    Args:
        inner: the descent (name, dict or Descent; default "dense").
        float32_steps: directions computed in float32 (>= 0).
    """

    name = "mixed"

    def __init__(self, inner="dense", float32_steps: int = 100):
        from .gauss_newton import make_part

        self.inner = make_part("descent", inner, DESCENTS, Descent)
        if isinstance(self.inner, MixedPrecision):
            raise ValueError("MixedPrecision: inner must be another descent, not a MixedPrecision.")
        if isinstance(float32_steps, bool) or not isinstance(float32_steps, int) or float32_steps < 0:
            raise ValueError(f"MixedPrecision: float32_steps must be an integer >= 0, got {float32_steps!r}.")
        self.float32_steps = float32_steps
        self.default_solver = self.inner.default_solver
        self.solvers = self.inner.solvers
        self.calls = 0

    @property
    def solves_damped_system(self) -> bool:
        # a float32 step solves the system to float32's accuracy only
        return self.inner.solves_damped_system and self.float32_steps == 0

    def start(self, generator):
        super().start(generator)
        self.inner.start(generator)

    def split_rows(self):
        self.inner.split_rows()
        self.split = True

    def _lin(self, lin):
        if self.calls < self.float32_steps and lin.dtype == torch.float64:
            return lin.cached("float32", lambda: lin.astype(torch.float32))
        return lin

    def frobenius2(self, lin):
        return self.inner.frobenius2(self._lin(lin))

    def direction(self, lin, lam, solver):
        low = self._lin(lin)
        self.calls += 1
        if low is lin:
            step = self.inner.direction(lin, lam, solver)
            return Direction(step.d, step.Jd, step.lam, {**step.info, "float32": 0})
        step = self.inner.direction(low, lam, solver)
        d = step.d.to(lin.dtype)
        return Direction(d, lin.mv(d), step.lam, {**step.info, "float32": 1})

    def update(self, accepted, alpha):
        self.inner.update(accepted, alpha)

    def memory(self, rows, p, factor_bytes, item):
        return self.inner.memory(rows, p, factor_bytes, item) + factor_bytes // 2

    def state_dict(self):
        return {"calls": self.calls, "inner": self.inner.state_dict()}

    def load_state_dict(self, state):
        self.calls = int(state["calls"])
        self.inner.load_state_dict(state["inner"])

    def describe(self):
        return {"name": self.name, "inner": self.inner.describe(), "float32_steps": self.float32_steps}


DESCENTS = {"dense": Dense, "cg": NormalCG, "dual": Dual, "sketched": Sketched, "mixed": MixedPrecision}
