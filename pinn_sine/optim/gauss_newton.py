"""The Gauss-Newton (Levenberg-Marquardt) stage: second-order training for
least-squares PINN losses.

The training loss is L(theta) = sum_k w_k mean_i |r_{k,i}(theta)|^2 = ||r(theta)||^2 for
the stacked, weighted residual vector r (N entries: one per point, term and output
column; :func:`~pinn_sine.derivatives.jacobian.residual_jacobian`). Gauss-Newton
linearises r around theta, r(theta + d) ~ r + J d, and solves the damped normal
equations

    (J^T J + lambda I) d = -J^T r                         (primal, p x p)
    d = -J^T (J J^T + lambda I)^{-1} r                    (dual, N x N; the same d)

by Cholesky, whichever system is smaller. With the weights and the means folded into
r this is the energy natural gradient (ENGD, Mueller & Zeinhofer 2023) for these
losses; the damping makes it Levenberg-Marquardt. lambda = mu ||J||_F^2 / p, mu
adapted by the gain ratio

    rho = (L(theta) - L(theta + d)) / (L(theta) - ||r + J d||^2)

(actual over predicted decrease, Nielsen 1999): a step with rho > 0 is accepted and mu
shrinks by max(1/3, 1 - (2 rho - 1)^3); otherwise the step is undone and mu grows by a
factor nu that doubles after each consecutive rejection.

Use float64 (``net.double()``): in float32 the normal equations lose about half the
digits and the stage stalls near 1e-4 relative error.
"""
from __future__ import annotations

import math
import time
import warnings

import torch
from torch import Tensor

from ..constraints import unconstrained
from ..derivatives.jacobian import jacobian_parameters, residual_jacobian
from .stages import Stage, StepResult, check_batch, check_every, check_positive_float, check_steps

_MU_MIN, _MU_MAX = 1e-15, 1e12


class GaussNewton(Stage):
    """Levenberg-Marquardt steps on a fixed batch, with the residual Jacobian built by
    the jet engine (one forward pass and one backward pass per residual column).

    Args:
        steps: Gauss-Newton steps (>= 0); a rejected step counts as a step.
        batch: interior points of the batch (None: the run's batch). The other point
            sets are sized from it by the problem, as for every stage.
        damping: the initial relative damping mu (> 0), lambda = mu ||J||_F^2 / p.
        line_search: after a rejected step, try d/2, d/4, ... (at most 8 halvings) and
            accept the first that lowers the loss.
        resample_every: draw a fresh batch every this many steps (None: one batch).
        max_memory: bytes the Jacobian and the linear system may take (default 4 GiB);
            beyond it the stage refuses to start and says what to change.
    """

    name = "gauss_newton"
    evaluate_each_log = True

    def __init__(self, steps: int, *, batch: int | None = None, damping: float = 1e-3, line_search: bool = False,
                 resample_every: int | None = None, max_memory: float = 4 * 2**30):
        self.steps = check_steps(steps, "GaussNewton")
        self.batch = check_batch(batch, "GaussNewton")
        self.damping = check_positive_float(damping, "damping", "GaussNewton")
        if not isinstance(line_search, bool):
            raise ValueError(f"GaussNewton: line_search must be True or False, got {line_search!r}.")
        self.line_search = line_search
        self.resample_every = None if resample_every is None else check_every(resample_every, "resample_every",
                                                                                "GaussNewton")
        self.max_memory = check_positive_float(max_memory, "max_memory", "GaussNewton")
        self.mu, self.nu = self.damping, 2.0
        self.points = None
        self.generator = None
        self.params: list[Tensor] = []

    # ----- set-up ---------------------------------------------------------------------
    def start(self, run, index: int) -> None:
        if run.ctx.active:
            raise ValueError("GaussNewton runs in one process: its linear system is not split over ranks. Run it "
                             "without torchrun, or use Adam / L-BFGS for distributed runs.")
        if run.causal is not None:
            raise ValueError("GaussNewton minimises the plain weighted least-squares loss; causal weighting is not "
                             "a least-squares term. Train without causal=, or use Adam / L-BFGS with it.")
        if not run.problem.has_residuals:
            raise ValueError(f"GaussNewton needs the loss terms as per-point residuals; "
                             f"{type(run.problem).__name__} does not define residuals() (its loss is not a plain "
                             "least-squares sum). Use Adam / L-BFGS for it.")
        self.params = jacobian_parameters(run.net)
        if self.params[0].dtype != torch.float64:
            warnings.warn("GaussNewton in float32 stalls near 1e-4 relative error (the normal equations square the "
                          "condition number); train a float64 network: net.double() in Python, --dtype float64 on the "
                          "command line.", RuntimeWarning, stacklevel=3)
        self.generator = run.stage_generator(index)
        self.points = run.fixed_batch(self.batch, index, generator=self.generator)
        self._check_memory(run)

    def _check_memory(self, run) -> None:
        p = sum(q.numel() for q in self.params)
        n = sum(v.shape[0] for k, v in self.points.items() if k in run.problem.derivatives)
        rows = n * max(run.problem.out_dim, 1)
        width = max(layer.weight.shape[0] * layer.weight.shape[1] for layer in unconstrained(run.net).linears)
        item = self.params[0].element_size()
        # J, one layer's per-point weight gradients, and the smaller normal-equation matrix.
        need = item * (rows * p + n * width + min(rows, p) ** 2)
        if need > self.max_memory:
            raise MemoryError(
                f"GaussNewton: about {rows} residuals x {p} parameters; the Jacobian and the "
                f"{min(rows, p)}^2 system need about {need / 2**30:.2f} GiB, over max_memory="
                f"{self.max_memory / 2**30:.2f} GiB. Use a smaller batch (GaussNewton(batch=...)) or a smaller "
                "network, or raise max_memory.")

    # ----- one step -------------------------------------------------------------------
    def step(self, run, done: int) -> StepResult:
        t0 = time.perf_counter()
        if self.resample_every is not None and done and done % self.resample_every == 0:
            self.points = run.fixed_batch(self.batch, None, generator=self.generator)
        r, J, _ = residual_jacobian(run.problem, run.net, self.points, run.term_weights)
        loss = float(r @ r)
        if not math.isfinite(loss):
            total, terms, _ = run.weighted(self.points, None, evaluation=True)
            run.check_finite(run.offset + done, self.name, total, terms)
        scale = float((J * J).sum()) / J.shape[1]
        lam = self.mu * max(scale, 1e-300)
        d, Jd, lam = self._solve(J, r, lam)
        predicted = -(2 * float(r @ Jd) + float(Jd @ Jd))
        before = [q.detach().clone() for q in self.params]
        gain, accepted, alpha = float("nan"), False, 1.0
        for attempt in range(9 if self.line_search else 1):
            alpha = 0.5 ** attempt
            self._set(before, d, alpha)
            with torch.no_grad():
                total, terms, loss_terms = run.weighted(self.points, None, evaluation=True)
            new = float(total)
            if attempt == 0:
                gain = (loss - new) / predicted if predicted > 0 else float("-inf")
                accepted = math.isfinite(new) and gain > 0
            else:
                accepted = math.isfinite(new) and new < loss
            if accepted:
                break
        if gain > 0 and alpha == 1.0:
            self.mu = max(_MU_MIN, self.mu * max(1 / 3, 1 - (2 * gain - 1) ** 3))
            self.nu = 2.0
        else:
            self.mu = min(_MU_MAX, self.mu * self.nu)
            self.nu *= 2.0
        if not accepted:
            self._set(before, None, 0.0)
            with torch.no_grad():
                total, terms, loss_terms = run.weighted(self.points, None, evaluation=True)
        run.check_finite(run.offset + done + 1, self.name, total, terms)
        # lambda: the damping this step used; mu: the relative damping for the next one.
        extra = {"lambda": lam, "mu": self.mu, "gain": gain, "accepted": int(accepted),
                 "step_time": time.perf_counter() - t0}
        if self.line_search:
            extra["alpha"] = alpha if accepted else 0.0
        return StepResult(1, total, terms, loss_terms, extra)

    @staticmethod
    def _solve(J: Tensor, r: Tensor, lam: float) -> tuple[Tensor, Tensor, float]:
        """d solving (J^T J + lam I) d = -J^T r (or its dual form), J d, and the lam used
        (raised tenfold until the matrix factors in this precision)."""
        solve = _damped_solve_lapack if J.device.type == "cpu" else _damped_solve_torch
        while True:
            d = solve(J, r, lam)
            if d is not None:
                return d, J @ d, lam
            lam = max(lam * 10, 1e-300)  # not positive definite in this precision: damp more

    @torch.no_grad()
    def _set(self, base: list[Tensor], d: Tensor | None, alpha: float) -> None:
        k = 0
        for q, q0 in zip(self.params, base):
            m = q.numel()
            q.copy_(q0 if d is None else q0 + alpha * d[k:k + m].view_as(q))
            k += m

    # ----- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"mu": self.mu, "nu": self.nu, "generator": self.generator.get_state(),
                "points": {k: v.detach().cpu() for k, v in self.points.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.mu, self.nu = float(state["mu"]), float(state["nu"])
        self.generator.set_state(state["generator"])
        dtype, device = self.params[0].dtype, self.params[0].device
        self.points = {k: v.to(device=device, dtype=dtype) for k, v in state["points"].items()}

    def describe(self) -> dict:
        return {"stage": self.name, "steps": self.steps, "batch": self.batch, "damping": self.damping,
                "line_search": self.line_search, "resample_every": self.resample_every,
                "max_memory": self.max_memory}


def _damped_solve_torch(J: Tensor, r: Tensor, lam: float) -> Tensor | None:
    """The damped Gauss-Newton step by torch.linalg (any device); None if the matrix
    does not factor."""
    n, p = J.shape
    A = J.T @ J if n >= p else J @ J.T
    A.diagonal().add_(lam)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info):
        return None
    if n >= p:
        return -torch.cholesky_solve((J.T @ r).unsqueeze(1), L).squeeze(1)
    return -(J.T @ torch.cholesky_solve(r.unsqueeze(1), L).squeeze(1))


def _damped_solve_lapack(J: Tensor, r: Tensor, lam: float) -> Tensor | None:
    """The same step on the CPU through SciPy's BLAS/LAPACK: a symmetric rank-k update
    (syrk, half the flops of J^T J) and Cholesky (potrf/potrs), used because torch's
    CPU matmul and Cholesky were the slower path where it was tuned (benchmarks/optimizers.py
    times the stage)."""
    import numpy as np
    from scipy.linalg import blas, lapack

    Jn, rn = J.detach().numpy(), r.detach().numpy()
    n, p = Jn.shape
    syrk = blas.get_blas_funcs("syrk", (Jn,))
    A = syrk(1.0, Jn, trans=1 if n >= p else 0, lower=1)  # the lower triangle of J^T J or J J^T
    A[np.diag_indices_from(A)] += lam
    potrf, potrs = lapack.get_lapack_funcs(("potrf", "potrs"), (A,))
    L, info = potrf(A, lower=1, overwrite_a=1, clean=0)
    if info:
        return None
    if n >= p:
        x, info = potrs(L, Jn.T @ rn, lower=1)
        return torch.from_numpy(-x)
    y, info = potrs(L, rn, lower=1)
    return torch.from_numpy(-(Jn.T @ y))
