"""Loss weighting: how :func:`~pinn_sine.train.train` combines a problem's loss terms.

Two independent choices, both objects passed to ``train``:

- between the terms (``weights=``): :class:`FixedWeights` (a plain dict works too) or
  :class:`GradNormWeights` (learning-rate annealing: each weight from the ratio of
  gradient norms, smoothed by a moving average);
- within the PDE term, across time (``causal=``): :class:`CausalWeights` ("respecting
  causality": a time chunk's residual counts only once the earlier chunks are solved).

A term weighting answers :meth:`TermWeighting.weights` once per step, and asks for the
terms' gradient norms through a callback only on the steps it updates, so a fixed
weighting costs nothing. Everything a run needs to continue is in
:meth:`~TermWeighting.state_dict` (plain floats: the trainer stores it in the
checkpoint); :meth:`~TermWeighting.log` gives the history columns ``w_<term>``.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Mapping

import torch
from torch import Tensor

from ._checks import positive


def _check_weights(weights: Mapping[str, float], what: str) -> dict[str, float]:
    out = {}
    for k, v in dict(weights).items():
        out[str(k)] = positive(f"{what}[{k!r}]", v, "weights are positive floats, e.g. {'boundary': 10.0}.")
    return out


class TermWeighting:
    """The weights w_k of the loss sum_k w_k L_k over a problem's named terms.

    Subclasses implement :meth:`weights`; :meth:`named_terms` lists the term names the
    weighting was configured with (the trainer checks them against the problem).
    """

    def weights(self, terms: Mapping[str, Tensor], step: int,
                grad_norms: Callable[[], dict[str, float]] | None) -> dict[str, float]:
        """The weight of every term at Adam step ``step`` (0-based).

        Args:
            terms: the step's loss terms (scalars with their graphs).
            grad_norms: call it to get ||d L_k / d theta||_2 of every term over the whole
                (all-rank) batch; it costs one backward pass per term. None where the
                weights must be held (L-BFGS, evaluation).
        """
        raise NotImplementedError

    def named_terms(self) -> set[str]:
        return set()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass

    def log(self) -> dict[str, float]:
        """History columns ``w_<term>`` (the weights last returned)."""
        return {f"w_{k}": v for k, v in getattr(self, "_last", {}).items()}

    def describe(self) -> dict:
        """The configuration, JSON-serialisable (stored in checkpoints and metrics)."""
        return {"type": type(self).__name__}


class FixedWeights(TermWeighting):
    """Constant weights: w_k = ``weights[k]``, 1 for a term not named.

    Args:
        weights: {term: weight > 0}, e.g. ``{"boundary": 10.0}``.
    """

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.fixed = _check_weights(weights or {}, "weights")
        self._last: dict[str, float] = {}

    def weights(self, terms, step, grad_norms):
        self._last = {k: self.fixed.get(k, 1.0) for k in terms}
        return self._last

    def named_terms(self) -> set[str]:
        return set(self.fixed)

    def describe(self) -> dict:
        return {"type": "FixedWeights", "weights": self.fixed}

    def __repr__(self) -> str:
        return f"FixedWeights({self.fixed!r})"


class GradNormWeights(TermWeighting):
    """Gradient-norm balancing ("learning-rate annealing"; Wang, Teng & Perdikaris 2021,
    "Understanding and mitigating gradient flow pathologies in PINNs", SIAM J. Sci.
    Comput.; in the form of jaxpi, Wang et al. 2023, "An expert's guide to training
    PINNs").

    Every ``update_every`` Adam steps (starting at step 0) the new weight of term k is

        w_hat_k = mean_j ||grad L_j|| / ||grad L_k||,

    so the weighted terms have equal gradient norms: the term with the larger gradient
    gets the smaller weight. The weights follow a moving average,
    w_k <- alpha w_k + (1 - alpha) w_hat_k, starting from ``initial`` (1 for a term not
    named). In between, and during L-BFGS, the weights are held fixed (an objective that
    changes inside a line search would break L-BFGS). A term whose gradient is exactly
    zero keeps its weight.

    Args:
        update_every: steps between updates (>= 1); each update costs one backward pass
            per term. jaxpi uses 1000 for runs of 10^5 steps.
        alpha: moving-average factor in [0, 1) (0: no smoothing).
        initial: starting weights {term: w > 0}.
    """

    def __init__(self, update_every: int = 1000, alpha: float = 0.9, *, initial: Mapping[str, float] | None = None):
        if isinstance(update_every, bool) or not (isinstance(update_every, numbers.Integral) and update_every >= 1):
            raise ValueError(f"update_every must be an integer >= 1, got {update_every!r}; use e.g. 1000.")
        if isinstance(alpha, (bool, str)) or not isinstance(alpha, numbers.Real) or not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}; use e.g. 0.9 (the moving-average factor).")
        self.update_every = int(update_every)
        self.alpha = float(alpha)
        self.initial = _check_weights(initial or {}, "initial")
        self.current: dict[str, float] = {}
        self.updates = 0
        self._last: dict[str, float] = {}

    def weights(self, terms, step, grad_norms):
        for k in terms:
            self.current.setdefault(k, self.initial.get(k, 1.0))
        if grad_norms is not None and step % self.update_every == 0:
            self.update(grad_norms())
        self._last = {k: self.current[k] for k in terms}
        return self._last

    def update(self, norms: Mapping[str, float]) -> None:
        """One moving-average update from the terms' gradient norms."""
        valid = [float(v) for v in norms.values() if math.isfinite(float(v))]
        mean = sum(valid) / len(valid) if valid else 0.0
        if not mean > 0:
            return
        for k, g in norms.items():
            g = float(g)
            if g > 0 and math.isfinite(g):
                old = self.current.get(k, self.initial.get(k, 1.0))
                self.current[k] = self.alpha * old + (1 - self.alpha) * mean / g
        self.updates += 1

    def named_terms(self) -> set[str]:
        return set(self.initial)

    def state_dict(self) -> dict:
        return {"current": dict(self.current), "updates": self.updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.current = {str(k): float(v) for k, v in dict(state.get("current", {})).items()}
        self.updates = int(state.get("updates", 0))

    def describe(self) -> dict:
        return {"type": "GradNormWeights", "update_every": self.update_every, "alpha": self.alpha,
                "initial": self.initial}

    def __repr__(self) -> str:
        return f"GradNormWeights(update_every={self.update_every}, alpha={self.alpha})"


def as_term_weighting(weights) -> TermWeighting:
    """None -> all ones, a dict -> :class:`FixedWeights`, a TermWeighting as is."""
    if weights is None:
        return FixedWeights()
    if isinstance(weights, TermWeighting):
        return weights
    if isinstance(weights, Mapping):
        return FixedWeights(weights)
    raise TypeError(f"weights must be a dict {{term: weight}}, FixedWeights or GradNormWeights, got {weights!r}.")


class CausalWeights:
    """Causal weighting of the PDE residual in time (Wang, Sankaran & Perdikaris 2024,
    "Respecting causality for training physics-informed neural networks", CMAME).

    [t_lo, t_hi] (the problem's bounds of input ``time``) is split into ``chunks``
    equal intervals; with L_i the mean residual of the points in chunk i,

        L_pde = (1 / M) sum_i w_i L_i,   w_i = exp(-eps * sum_{j < i} L_j),

    the weights taken as constants (no gradient through them). w_0 = 1 and the weights
    never increase with time: a chunk is trained once the earlier ones have small
    residuals. Large ``eps`` enforces the order strictly; the paper raises eps over
    training ([1e-2, 1e-1, 1, 10, 100]) when min w_i > 0.99. The residual comes from
    :meth:`Problem.pointwise_residual`, so the term it replaces (``term``, "pde") is
    the same quantity, reweighted; the history keeps the plain mean under "pde" and
    logs the weights as ``causal_w0`` ... ``causal_w{M-1}``. With several processes the
    chunk means are over the whole (all-rank) batch.

    Args:
        eps: causality parameter (> 0).
        chunks: number of time chunks M (>= 2).
        term: the loss term the causal sum replaces.
        time: the name of the time input.
    """

    def __init__(self, eps: float = 1.0, chunks: int = 32, *, term: str = "pde", time: str = "t"):
        self.eps = positive("eps", eps, "use e.g. eps=1.0 (larger enforces causality more strictly).")
        if isinstance(chunks, bool) or not (isinstance(chunks, numbers.Integral) and 2 <= chunks < 2**31):
            raise ValueError(f"chunks must be an integer >= 2, got {chunks!r}; use e.g. chunks=32.")
        self.chunks = int(chunks)
        self.term = term
        self.time = time
        self.last_weights: list[float] = [1.0] * chunks
        self._column: int | None = None
        self._t_range: tuple[float, float] | None = None

    def bind(self, problem) -> "CausalWeights":
        """Check ``problem`` is time-dependent and remember where its time input lives."""
        if self.time not in problem.input_names:
            raise ValueError(f"CausalWeights needs a time-dependent problem with an input named {self.time!r}; "
                             f"{problem.name} has inputs {tuple(problem.input_names)}. Drop causal=, or set "
                             "time= to the name of the time input.")
        self._column = problem.input_names.index(self.time)
        lo, hi = problem.bounds[self._column]
        self._t_range = (float(lo), float(hi))
        return self

    def chunk_index(self, t: Tensor) -> Tensor:
        """The chunk of each time t (n,) -> (n,) int64 in [0, M)."""
        lo, hi = self._t_range
        k = torch.floor((t - lo) / (hi - lo) * self.chunks).long()
        return k.clamp_(0, self.chunks - 1)

    def chunk_sums(self, residual: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        """Per-chunk sums of ``residual`` (n,) and point counts, both (M,), at the
        interior ``points`` (n, in_dim)."""
        if self._column is None:
            raise RuntimeError("CausalWeights.bind(problem) must be called first (train() does it).")
        idx = self.chunk_index(points[:, self._column].detach())
        sums = torch.zeros(self.chunks, dtype=residual.dtype, device=residual.device).index_add(0, idx, residual)
        counts = torch.bincount(idx, minlength=self.chunks).to(residual.dtype)
        return sums, counts

    def weights_from_means(self, means: Tensor) -> Tensor:
        """w_i = exp(-eps * sum_{j<i} L_j) from the chunk means L (M,), detached."""
        means = means.detach()
        before = torch.cumsum(means, 0) - means
        return torch.exp(-self.eps * before)

    def loss(self, residual: Tensor, points: Tensor,
             all_reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """The causally weighted term from the pointwise residual (n,) at ``points``.

        ``all_reduce`` (a sum over processes) makes the weights those of the whole batch.
        """
        sums, counts = self.chunk_sums(residual, points)
        means = sums / counts.clamp_min(1)
        if all_reduce is not None:
            stats = all_reduce(torch.stack([sums.detach(), counts]))
            global_means = stats[0] / stats[1].clamp_min(1)
        else:
            global_means = means
        w = self.weights_from_means(global_means)
        self.last_weights = [float(v) for v in w]
        return (w * means).mean()

    def log(self) -> dict[str, float]:
        return {f"causal_w{i}": v for i, v in enumerate(self.last_weights)}

    def describe(self) -> dict:
        return {"type": "CausalWeights", "eps": self.eps, "chunks": self.chunks, "term": self.term,
                "time": self.time}

    def __repr__(self) -> str:
        return f"CausalWeights(eps={self.eps}, chunks={self.chunks})"
