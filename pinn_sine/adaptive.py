"""Residual-based adaptive sampling of the collocation points (RAD).

Wu, Zhu, Tan, Kartha & Lu 2023, "A comprehensive study of non-adaptive and
residual-based adaptive sampling for physics-informed neural networks", CMAME 403.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from .derivatives import get_engine
from .problems.base import Problem


def aligned_entries(problem, batch: dict[str, Tensor], point_set: str) -> list[str]:
    """The data entries of ``batch`` that hold one row per point of ``point_set`` (targets
    computed at sampling time, e.g. Poisson's source "f"), found by their length.

    Raises ValueError when another point set has the same length and a data entry of
    that length exists: then it cannot be told which set the entry belongs to.
    """
    n = batch[point_set].shape[0]
    sets = set(problem.derivatives)
    data = [k for k, v in batch.items() if k not in sets and v.ndim >= 1 and v.shape[0] == n]
    clash = [k for k in sets if k != point_set and k in batch and batch[k].shape[0] == n]
    if data and clash:
        raise ValueError(f"{problem.name}: the data entries {data} have {n} rows, as many as the point sets "
                         f"{[point_set] + clash}; RAD cannot tell which set they belong to. Change the sampling "
                         "fractions (e.g. boundary_fraction) so that the sets differ in size.")
    return data


def _real(value) -> bool:
    """Whether ``value`` is a real number (not a bool or a string)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class RADSampler:
    """Draw the interior collocation points from a candidate pool with probability

        p(x) ∝ eps(x)^k / mean(eps^k) + c,

    eps(x) = |residual| at x (the square root of :meth:`Problem.pointwise_residual`),
    the mean over the pool. k = 1, c = 1 is the setting Wu et al. recommend; k -> 0 or
    c -> inf tends to uniform sampling, c = 0 samples by the residual alone.

    Every ``refresh_every`` Adam steps (and at the start) a fresh pool of candidates is
    drawn with the problem's sampler and its residuals are evaluated (without gradients,
    in slices of ``slice_size`` points); every time the trainer draws a batch, its
    ``point_set`` (and the data entries aligned with it) is replaced by a draw without
    replacement from the pool. The other point sets (boundary, initial) stay the
    problem's own. Draws use the trainer's generator, so runs repeat and resume exactly;
    the pool and its probabilities are part of the checkpoint. With several processes
    every process keeps its own pool (``pool`` is per process).

    Args:
        pool: candidates per process (>= the batch); None: ``pool_factor`` x the batch.
        k: exponent (>= 0).
        c: offset (>= 0; k = 0 or c > 0 keeps every candidate possible).
        refresh_every: steps between pool refreshes (>= 1).
        pool_factor: pool size relative to the batch when ``pool`` is None (>= 1).
        point_set: the point set drawn adaptively.
        slice_size: points per residual evaluation of the pool.
    """

    def __init__(self, pool: int | None = None, k: float = 1.0, c: float = 1.0, refresh_every: int = 1000, *,
                 pool_factor: float = 10.0, point_set: str = "interior", slice_size: int = 8192):
        if pool is not None and (isinstance(pool, bool) or not (isinstance(pool, numbers.Integral)
                                                                  and 1 <= pool < 2**31)):
            raise ValueError(f"pool must be an integer >= 1 or None, got {pool!r}; use e.g. 10 x the batch.")
        for name, value in (("k", k), ("c", c)):
            if not (_real(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 (a finite number), got {name}={value!r}; use e.g. {name}=1.")
        if isinstance(refresh_every, bool) or not (isinstance(refresh_every, numbers.Integral) and refresh_every >= 1):
            raise ValueError(f"refresh_every must be an integer >= 1, got {refresh_every!r}; use e.g. 1000.")
        if not (_real(pool_factor) and math.isfinite(pool_factor) and pool_factor >= 1):
            raise ValueError(f"pool_factor must be a finite number >= 1, got {pool_factor!r}; use e.g. 10.")
        if isinstance(slice_size, bool) or not (isinstance(slice_size, numbers.Integral) and slice_size >= 1):
            raise ValueError(f"slice_size must be an integer >= 1, got {slice_size!r}; use e.g. 8192.")
        if not isinstance(point_set, str):
            raise ValueError(f"point_set must be the name of a point set, got {point_set!r}; e.g. \"interior\".")
        self.pool_size, self.k, self.c = None if pool is None else int(pool), float(k), float(c)
        self.refresh_every, self.pool_factor = int(refresh_every), float(pool_factor)
        self.point_set, self.slice_size = point_set, int(slice_size)
        self.pool: dict[str, Tensor] | None = None
        self.probs: Tensor | None = None
        self.refreshes = 0

    # ----- the trainer's calls ------------------------------------------------------------
    def check(self, problem) -> None:
        if self.point_set not in problem.derivatives:
            raise ValueError(f"RADSampler(point_set={self.point_set!r}): {problem.name} has point sets "
                             f"{sorted(problem.derivatives)}.")
        if not problem.has_pointwise:
            problem.pointwise_residual({}, {})  # raises the explanation
        if self.point_set in problem._fixed():
            warnings.warn(f"RADSampler: {problem.name}'s point set {self.point_set!r} is fixed (fixed_sets()), so "
                          "every pool is the same points and RAD only redraws among them; drop the fixed set to "
                          "sample adaptively, or drop RAD.", RuntimeWarning, stacklevel=3)

    def due(self, step: int) -> bool:
        return self.pool is None or step % self.refresh_every == 0

    def refresh(self, problem, net: nn.Module, engine: str, batch: int, generator: torch.Generator, *,
                progress: float = 1.0, to_dev: Callable[[dict], dict] | None = None) -> None:
        """Draw a fresh pool for batches of ``batch`` points and evaluate its residuals
        (``to_dev`` moves slices of it to the network; default: the network's device
        and dtype)."""
        size = int(self.pool_size if self.pool_size is not None else math.ceil(self.pool_factor * batch))
        if size < batch:
            raise ValueError(f"the RAD pool ({size} points) is smaller than the batch ({batch}); "
                             f"give pool >= {batch}.")
        cand = problem.draw(size, generator, progress=progress)
        keep = [self.point_set] + aligned_entries(problem, cand, self.point_set)
        self.pool = {k: cand[k] for k in keep}
        density = self.density(residuals(problem, net, engine, self.pool, self.point_set, self.slice_size,
                                         to_dev)).double().cpu()
        if not torch.all(torch.isfinite(density)):
            raise FloatingPointError("non-finite residual in the RAD pool; lower the learning rate.")
        self.probs = density / density.sum()
        self.refreshes += 1

    def density(self, residual: Tensor) -> Tensor:
        """eps^k / mean(eps^k) + c from the squared residual (n,) (unnormalised)."""
        e = residual.detach().clamp_min(0).sqrt() ** self.k
        mean = e.mean()
        scaled = e / mean if mean > 0 else torch.ones_like(e)
        return scaled + self.c

    def draw(self, problem, batch: dict[str, Tensor], generator: torch.Generator,
             to_dev: Callable[[dict], dict] = lambda b: b) -> dict[str, Tensor]:
        """``batch`` with its point set (and aligned data) replaced by a draw from the pool."""
        n = batch[self.point_set].shape[0]
        drop = [self.point_set] + aligned_entries(problem, batch, self.point_set)
        idx = torch.multinomial(self.probs, n, replacement=False, generator=generator)
        out = {k: v for k, v in batch.items() if k not in drop}
        out.update(to_dev({k: v[idx] for k, v in self.pool.items()}))
        return out

    def state_dict(self) -> dict:
        if self.pool is None:
            return {}
        return {"pool": {k: v.cpu() for k, v in self.pool.items()}, "probs": self.probs, "refreshes": self.refreshes}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.pool = dict(state["pool"])
            self.probs = state["probs"]
            self.refreshes = int(state["refreshes"])

    def describe(self) -> dict:
        return {"type": "RADSampler", "pool": self.pool_size, "k": self.k, "c": self.c,
                "refresh_every": self.refresh_every, "pool_factor": self.pool_factor, "point_set": self.point_set}

    def __repr__(self) -> str:
        return f"RADSampler(pool={self.pool_size}, k={self.k}, c={self.c}, refresh_every={self.refresh_every})"


def residuals(problem, net: nn.Module, engine: str, batch: dict[str, Tensor], point_set: str = "interior",
              slice_size: int = 8192, to_dev: Callable[[dict], dict] | None = None) -> Tensor:
    """:meth:`Problem.pointwise_residual` over the points of ``batch[point_set]`` (and the
    data aligned with it), evaluated in slices without building a graph; (n,). Slices
    are moved by ``to_dev`` (default: to the network's device and dtype)."""
    if to_dev is None:
        p = next(net.parameters())

        def to_dev(b):
            return {k: v.to(device=p.device, dtype=p.dtype) for k, v in b.items()}
    fn = get_engine(engine)
    spec = problem.derivatives[point_set]
    n = batch[point_set].shape[0]
    out = []
    for s in range(0, n, slice_size):
        part = to_dev({k: v[s:s + slice_size] for k, v in batch.items()})
        if engine == "jet":
            with torch.no_grad():
                jets = {point_set: fn(net, part[point_set], problem.input_names, spec)}
                out.append(problem.pointwise_residual(jets, part))
        else:  # the autograd engine differentiates through the inputs
            with torch.enable_grad():
                jets = {point_set: fn(net, part[point_set], problem.input_names, spec)}
                out.append(problem.pointwise_residual(jets, part).detach())
    return torch.cat(out) if out else torch.zeros(0)
