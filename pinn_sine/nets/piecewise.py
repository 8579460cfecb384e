"""A network piecewise in time: one network per time window, as :func:`pinn_sine.march` returns.

With window edges t_0 < t_1 < ... < t_K and networks N_0 ... N_{K-1},

    u(t, x) = N_k(t, x)   for t_k <= t < t_{k+1}   (the last window includes t_K),

so a point at an inner edge t_k belongs to the later window (whose initial data were
read from the earlier one there: the two agree at t_k to the accuracy of the hand-off).
Times outside [t_0, t_K] take the nearest window. The derivative engines see the pieces:
"jet" (:func:`~pinn_sine.derivatives.forward_jet`) runs each piece's jet on its rows,
"autograd" and "func" differentiate :meth:`forward`, which scatters the pieces' outputs
back into the row order (no derivative crosses an edge: the pieces are separate).

``config`` ({"piecewise": {"edges", "time_input", "nets": [each piece's config]}})
rebuilds it (:func:`piecewise_from_config`, what :func:`pinn_sine.load_net` calls).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["PiecewiseInTime", "piecewise_from_config", "check_edges"]


def check_edges(edges, *, what: str = "edges") -> tuple[float, ...]:
    """``edges`` as a tuple of >= 2 finite, strictly increasing floats (ValueError naming
    the first bad entry otherwise)."""
    try:
        values = tuple(float(e) for e in edges)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a sequence of times, e.g. [0.0, 0.5, 1.0], got {edges!r}.") from None
    if len(values) < 2:
        raise ValueError(f"{what} needs at least two times (one window [t_0, t_1]), got {list(values)}.")
    for k, v in enumerate(values):
        if not math.isfinite(v):
            raise ValueError(f"{what}[{k}] = {v!r} is not finite; give finite times.")
        if k and v <= values[k - 1]:
            raise ValueError(f"{what} must increase strictly: {what}[{k - 1}] = {values[k - 1]:g} >= "
                             f"{what}[{k}] = {v:g}.")
    return values


class PiecewiseInTime(nn.Module):
    """One network per time window (module docstring).

    Args:
        nets: the K window networks, each mapping the same inputs to the same outputs.
        edges: the K + 1 window edges t_0 < ... < t_K.
        time_input: the column of the inputs that is time (0: "t" first).

    Attributes: ``nets`` (an ``nn.ModuleList``), ``edges``, ``in_dim``, ``out_dim``,
    ``config``, ``windows`` (K).
    """

    def __init__(self, nets: Sequence[nn.Module], edges: Sequence[float], *, time_input: int = 0):
        super().__init__()
        nets = list(nets)
        self.edges = check_edges(edges)
        if len(nets) != len(self.edges) - 1:
            raise ValueError(f"PiecewiseInTime: {len(nets)} networks for {len(self.edges) - 1} windows "
                             f"(edges {list(self.edges)}); give one network per window.")
        dims = {(getattr(n, "in_dim", None), getattr(n, "out_dim", None)) for n in nets}
        if len(dims) != 1 or None in next(iter(dims)):
            raise ValueError(f"PiecewiseInTime: the window networks must all have the same in_dim and out_dim, got "
                             f"{sorted(dims, key=str)}.")
        self.in_dim, self.out_dim = next(iter(dims))
        if not 0 <= time_input < self.in_dim:
            raise ValueError(f"PiecewiseInTime: time_input={time_input} is not an input column of a "
                             f"{self.in_dim}-input network.")
        self.time_input = int(time_input)
        self.nets = nn.ModuleList(nets)
        self.config = {"piecewise": {"edges": list(self.edges), "time_input": self.time_input,
                                     "nets": [dict(getattr(n, "config", {})) for n in nets]}}

    @property
    def windows(self) -> int:
        return len(self.nets)

    def window_of(self, t: Tensor) -> Tensor:
        """The window index of each time in ``t`` (n,): k with t_k <= t < t_{k+1}, the last
        window closed, times outside [t_0, t_K] in the nearest window."""
        inner = torch.tensor(self.edges[1:-1], dtype=t.dtype, device=t.device)
        return torch.searchsorted(inner, t.contiguous(), right=True)

    def _rows(self, x: Tensor) -> list[tuple[int, Tensor]]:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"PiecewiseInTime takes points (n, {self.in_dim}), got shape {tuple(x.shape)}.")
        k = self.window_of(x[:, self.time_input].detach())
        return [(w, torch.nonzero(k == w).squeeze(1)) for w in range(self.windows)]

    def forward(self, x: Tensor) -> Tensor:
        out = None
        for w, idx in self._rows(x):
            if idx.numel() == 0:
                continue
            y = self.nets[w](x.index_select(0, idx))
            if out is None:
                out = x.new_zeros((x.shape[0],) + tuple(y.shape[1:]), dtype=y.dtype)
            out = out.index_copy(0, idx, y)
        if out is None:  # no points
            return x.new_zeros((0, self.out_dim))
        return out

    def jet(self, x: Tensor, jet_fn: Callable) -> "object":
        """The jet of u at x: ``jet_fn(piece, rows)`` for each window's rows, scattered back
        (every stream of the pieces' :class:`~pinn_sine.derivatives.Jet` in row order)."""
        from ..derivatives.jet import Jet

        parts = [(idx, jet_fn(self.nets[w], x.index_select(0, idx))) for w, idx in self._rows(x) if idx.numel()]
        if not parts:
            return jet_fn(self.nets[0], x)

        def merge(streams):
            out = streams[0].new_zeros((x.shape[0],) + tuple(streams[0].shape[1:]))
            for (idx, _), t in zip(parts, streams):
                out = out.index_copy(0, idx, t)
            return out

        return Jet.combine([j for _, j in parts], merge)

    def extra_repr(self) -> str:
        return f"windows={self.windows}, edges={[round(e, 12) for e in self.edges]}"


def piecewise_from_config(config: dict, build: Callable[[dict], nn.Module]) -> PiecewiseInTime:
    """A fresh :class:`PiecewiseInTime` from its ``config`` (``{"piecewise": {...}}``),
    each piece built by ``build(piece_config)`` (e.g. :func:`~pinn_sine.nets.net_from_config`)."""
    spec = config.get("piecewise") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("nets"), list) or "edges" not in spec:
        raise ValueError(f"a piecewise network config holds {{'piecewise': {{'edges', 'nets', 'time_input'}}}}, got "
                         f"{config!r}.")
    return PiecewiseInTime([build(c) for c in spec["nets"]], spec["edges"], time_input=int(spec.get("time_input", 0)))
