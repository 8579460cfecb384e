"""How sure an inverse problem is of what it recovered: Gauss-Newton standard errors.

At the fitted parameters theta^ = (network weights, raw unknowns z) the training loss
is ||r~||^2 with the weighted residual rows r~ and their Jacobian J~
(:class:`~pinn_sine.derivatives.Linearization`: row (k, i) is sqrt(w_k / n_k) r_{k,i}).
Only the rows of the data term ("data", :meth:`Problem.observe
<pinn_sine.problems.Problem.observe>`) carry noise; the equation's rows are constraints.
A perturbation e of the data rows moves the minimiser, to first order, by
delta theta = -A^+ J~_d^T e with A = J~^T J~ (the Gauss-Newton matrix), so

    Cov(theta^) = s~^2  A^+ J~_d^T J~_d A^+,

the sandwich form of the Gauss-Newton covariance. When every row is data it is the
textbook s^2 (X^T X)^-1 of linear least squares. The residual variance (in the scaled
rows) is estimated from the data term,

    s~^2 = ||r~_d||^2 / (n_d - tr H),   H = J~_d A^+ J~_d^T,

tr H the effective number of parameters the data determine. A^+ is formed from the thin
SVD J~ = U S V^T, truncated at singular values below ``rcond`` S_max (directions the
residual cannot see: the network's redundant parameters), so that
Cov = s~^2 V S^-1 U_d^T U_d S^-1 V^T and tr H = ||U_d||_F^2.

Without J (``method="gram"``, the route for nets whose J does not fit in memory): the
unknowns' rows of the pseudo-inverse are J~^+[c, :] = J~[:, c]^T (J~ J~^T)^+, so with the
eigendecomposition of the Gram matrix J~ J~^T = U Lambda U^T (N x N, from
:meth:`Linearization.gram <pinn_sine.derivatives.Linearization.gram>`, which never forms
J) and the unknowns' own columns J~[:, c] (N x k),

    X = U Lambda^-1 U^T J~[:, c],   Cov_cc = s~^2 X_d^T X_d,   tr H = ||U_d||_F^2,

the same numbers as the SVD's, at memory N^2 + N k instead of N p. The eigenvalues carry
an absolute error of about eps lambda_max, so singular values below ~1e-8 S_max are not
resolved: this route truncates at max(rcond, ``GRAM_RCOND_FLOOR`` = 1e-7) S_max (where both
routes keep the same directions they agree to ~1e-4, tested a few times above the floor;
at the floor itself the eigenvalues near the cut carry errors of ~2% and the two routes
may cut there differently: 0.9% apart in the standard error on one machine's BLAS). The standard error of an
unknown theta = g(z) follows from its raw value's by the delta method,
se(theta) = |g'(z)| se(z) (:mod:`pinn_sine.problems.unknowns`).

The estimate is local: it assumes the fit converged (a Gauss-Newton stage is the natural
end) and the noise is independent with a common level in the data's residual units
(the noise given with the observations divides each row, so rows of different
precision are put on one scale first).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from .derivatives.linearization import linearize
from .problems.base import Problem


@dataclass
class Estimate:
    """One unknown's estimate and its standard error.

    Attributes:
        name: the parameter.
        value: the recovered value (a number, or a list for a vector unknown).
        std_error: its standard error (same shape).
        truth: the defining value where the observations were drawn from this very
            problem (a synthetic draw with the same parameters), else None.
        rel_error: |value - truth| / |truth| (a vector: the relative L2 error), or None.
        residual_std: s, the estimated noise level in the data's residual units (1 when
            the observations' noise levels are right).
        dof: tr H, the effective number of parameters the data determine.
        n_data: the number of data rows.
    """

    name: str
    value: float | list
    std_error: float | list
    truth: float | list | None
    rel_error: float | None
    residual_std: float
    dof: float
    n_data: int

    def as_dict(self) -> dict:
        return {"value": self.value, "std_error": self.std_error, "truth": self.truth, "rel_error": self.rel_error,
                "residual_std": self.residual_std, "dof": self.dof, "n_data": self.n_data}

    def __str__(self) -> str:
        if isinstance(self.value, list):
            text = f"{self.name}: {len(self.value)} entries, rms std error {_rms(self.std_error):.3g}"
        else:
            text = f"{self.name} = {self.value:.10g} +- {self.std_error:.3g}"
        if self.truth is not None:
            text += (f" (truth {self.truth:.10g}, " if not isinstance(self.truth, list) else " (") \
                + f"relative error {self.rel_error:.3g})"
        return text


def _rms(values) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


#: the smallest relative singular value the Gram route resolves (module docstring)
GRAM_RCOND_FLOOR = 1e-7
#: ``method="auto"`` materialises J up to this many entries (1 GiB of float64), else uses the Gram route
MATERIALIZE_ENTRIES = 2 ** 27
METHODS = ("auto", "svd", "gram")


def estimate(problem: Problem, net: nn.Module, *, batch: dict | None = None, n: int | None = None, seed: int = 0,
             weights=None, rcond: float = 1e-9, method: str = "auto") -> dict[str, Estimate]:
    """The unknowns of ``problem`` with their Gauss-Newton standard errors at ``net``'s
    current parameters (module docstring for the formula).

    Args:
        problem: a problem with unknowns (:meth:`~pinn_sine.problems.Problem.declare_unknown`)
            and observations (:meth:`~pinn_sine.problems.Problem.observe`).
        net: the trained network (float64 recommended: the Jacobian's small singular
            values are what the covariance inverts).
        batch: the points to linearise on (default: a draw of ``n`` interior points,
            the problem's default batch, from ``seed``).
        weights: the term weights the run trained with (a dict; missing terms 1).
        rcond: singular values of J~ below ``rcond`` times the largest are dropped.
        method: "svd" (J materialised, its thin SVD: memory N p), "gram" (J never
            formed: J~ J~^T and the unknowns' columns, memory N^2; truncates at
            max(rcond, 1e-7)) or "auto" (svd while N p <= 2^27 entries, else gram).

    Raises:
        ValueError: no unknowns, no observations, fewer data rows than the effective
            parameters, a bad ``rcond`` or ``method``.
    """
    if not problem.unknowns:
        raise ValueError(f"{problem.name} has no unknowns; declare them with problem.declare_unknown(name, guess).")
    obs = problem.observations
    if obs is None:
        raise ValueError(f"{problem.name} has no observations; the standard errors come from the data term "
                         "(problem.observe(observations)).")
    if isinstance(rcond, bool) or not isinstance(rcond, numbers.Real) or not 0 < rcond < 1:
        raise ValueError(f"rcond must be in (0, 1), got rcond={rcond!r}; use e.g. 1e-9.")
    if method not in METHODS:
        raise ValueError(f"Invalid method {method!r}. Must be one of {list(METHODS)}: 'svd' forms J (memory N p), "
                         "'gram' only J J^T (memory N^2), 'auto' picks by size.")
    param = next(net.parameters())
    if batch is None:
        size = problem.default_batch if n is None else int(n)
        batch = problem.draw(size, torch.Generator().manual_seed(seed))
    batch = {k: v.to(device=param.device, dtype=param.dtype) if v.is_floating_point() else v.to(param.device)
             for k, v in batch.items()}
    weights = dict(weights or {})
    lin = linearize(problem, net, batch, weights)
    scale = math.sqrt(float(weights.get("data", 1.0)) / len(obs))  # the data rows' factor sqrt(w_d / n_d)
    rows = lin.slices["data"]
    n_data = rows.stop - rows.start
    if method == "auto":
        method = "svd" if lin.n_rows * lin.n_cols <= MATERIALIZE_ENTRIES else "gram"
    if method == "svd":
        cov, s2, dof = covariance(lin.materialize(), lin.r, rows, slice(lin.n_net, lin.n_cols), rcond=rcond)
    else:
        columns = lin.submatrix(cols=torch.arange(lin.n_net, lin.n_cols, device=lin.device))
        cov, s2, dof = covariance_gram(lin.gram(), columns, lin.r, rows, rcond=max(rcond, GRAM_RCOND_FLOOR))
    out: dict[str, Estimate] = {}
    raw = problem.coefficients()
    truths = _truths(problem)
    offset = 0
    for name, z in raw.items():
        size = z.numel()
        block = cov[offset:offset + size, offset:offset + size]
        offset += size
        unknown = problem.unknowns.get(name)
        if unknown is None:  # a coefficient of the problem's own (no transform)
            value, slope = z.detach().reshape(-1), torch.ones(size, dtype=z.dtype)
        else:
            zd = z.detach().reshape(-1)
            value, slope = unknown.value(zd), unknown.derivative(zd)
        se = slope.to(block.dtype).abs() * block.diagonal().clamp_min(0).sqrt()
        value_out = value.tolist() if z.ndim else float(value[0])
        se_out = se.tolist() if z.ndim else float(se[0])
        truth = truths.get(name)
        rel = None
        if truth is not None:
            t = torch.as_tensor(truth, dtype=torch.float64).reshape(-1)
            rel = float((value.double() - t).norm() / t.norm()) if float(t.norm()) > 0 else None
        out[name] = Estimate(name, value_out, se_out, truth, rel, math.sqrt(s2) / scale, dof, n_data)
    return out


def covariance(J: torch.Tensor, r: torch.Tensor, data: slice, columns: slice | None = None, *,
               rcond: float = 1e-9) -> tuple[torch.Tensor, float, float]:
    """The Gauss-Newton (sandwich) covariance of the least-squares parameters (module
    docstring): ``J`` (N, p) and ``r`` (N,) the scaled rows, ``data`` the rows that carry
    the noise, ``columns`` the parameters whose covariance is returned (default all).

    Returns (Cov (k, k) for those columns, s~^2, tr H). With every row data and J of
    full rank it is s^2 (J^T J)^-1, s^2 = ||r||^2 / (N - p)."""
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    keep = S > rcond * S[0]
    U, S, Vh = U[:, keep], S[keep], Vh[keep]
    Ud = U[data]
    n_data = Ud.shape[0]
    dof = float((Ud ** 2).sum())
    _check_dof(n_data, dof)
    s2 = float((r[data] ** 2).sum()) / (n_data - dof)
    B = Ud / S  # Ud S^-1, (n_d, k)
    V = Vh[:, columns if columns is not None else slice(None)].T  # (cols, k)
    BV = B @ V.T  # (n_d, cols)
    return s2 * BV.T @ BV, s2, dof


def covariance_gram(G: torch.Tensor, columns: torch.Tensor, r: torch.Tensor, data: slice, *,
                    rcond: float = GRAM_RCOND_FLOOR) -> tuple[torch.Tensor, float, float]:
    """:func:`covariance` without J (module docstring): ``G`` = J J^T (N, N), ``columns``
    = J[:, c] (N, k) of the parameters whose covariance is returned, ``r`` and ``data`` as
    there. Eigenvalues of G below rcond^2 lambda_max are dropped (singular values of J
    below rcond S_max; G cannot resolve rcond below ~1e-8)."""
    lam, U = torch.linalg.eigh(G)
    keep = lam > rcond ** 2 * lam[-1]
    U, lam = U[:, keep], lam[keep]
    Ud = U[data]
    n_data = Ud.shape[0]
    dof = float((Ud ** 2).sum())
    _check_dof(n_data, dof)
    s2 = float((r[data] ** 2).sum()) / (n_data - dof)
    Xd = Ud @ ((U.T @ columns) / lam[:, None])  # rows `data` of (J^+)[c, :]^T, (n_d, k)
    return s2 * Xd.T @ Xd, s2, dof


def _check_dof(n_data: int, dof: float) -> None:
    if n_data - dof < 0.5:
        raise ValueError(f"the {n_data} data rows leave no degrees of freedom for the noise (the fit uses {dof:.1f} "
                         "of them); give more observations.")


def _truths(problem: Problem) -> dict:
    """The defining values of the unknowns where the observations were drawn from this
    problem (a synthetic draw recording the same problem and parameters)."""
    provenance = getattr(problem.observations, "provenance", None) or {}
    if provenance.get("kind") == "file":  # a saved synthetic draw: the record the file holds
        provenance = provenance.get("stored") or {}
    if provenance.get("kind") != "synthetic" or provenance.get("problem") != problem.name:
        return {}
    from .checkpoint import _canon

    if _canon(provenance.get("params")) != _canon(problem.params()):
        return {}
    return {name: problem.unknown_truth(name) for name in problem.unknowns}
