"""The mean of several networks in function space (a snapshot ensemble).

With member networks N_1 ... N_K of the same inputs and outputs,

    u(x) = (1/K) sum_k N_k(x),

whose derivatives are the means of the members' (every derivative is linear). This is
what :class:`~pinn_sine.callbacks.SnapshotEnsemble` hands back: the fits of the last K
batches of a Gauss-Newton stage that redraws its points, averaged as functions (their
parameters lie far apart on a set of nearly equal functions, so the mean of the
parameters is no fit at all: benchmarks/gn_averaging.py). For a linear PDE the
ensemble's residual is the mean of the members' residuals.

The derivative engines see the members: "jet" (:func:`~pinn_sine.derivatives.forward_jet`)
averages the members' jets, "autograd" and "func" differentiate :meth:`forward`.
``config`` ({"ensemble": {"nets": [each member's config]}}) rebuilds it
(:func:`ensemble_from_config`, what :func:`pinn_sine.nets.net_from_config` calls).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

__all__ = ["Ensemble", "ensemble_from_config"]


class Ensemble(nn.Module):
    """The mean of ``nets`` (module docstring).

    Args:
        nets: K >= 1 networks, each mapping the same inputs to the same outputs.

    Attributes: ``nets`` (an ``nn.ModuleList``), ``members`` (K), ``in_dim``,
    ``out_dim``, ``config``.
    """

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        nets = list(nets)
        if not nets:
            raise ValueError("Ensemble needs at least one network.")
        dims = {(getattr(n, "in_dim", None), getattr(n, "out_dim", None)) for n in nets}
        if len(dims) != 1:
            raise ValueError(f"Ensemble: the networks must all have the same in_dim and out_dim, got "
                             f"{sorted(dims, key=str)}.")
        self.in_dim, self.out_dim = next(iter(dims))
        self.nets = nn.ModuleList(nets)
        self.config = {"ensemble": {"nets": [dict(getattr(n, "config", {})) for n in nets]}}

    @property
    def members(self) -> int:
        return len(self.nets)

    def forward(self, x: Tensor) -> Tensor:
        return _mean([net(x) for net in self.nets])

    def jet(self, jet_fn: Callable) -> object:
        """The jet of u: the mean of ``jet_fn(member)`` over the members, stream by stream."""
        from ..derivatives.jet import Jet

        return Jet.combine([jet_fn(net) for net in self.nets], _mean)

    def extra_repr(self) -> str:
        return f"members={self.members}"


def _mean(tensors: Sequence[Tensor]) -> Tensor:
    """(t_1 + ... + t_K) / K, summed in member order."""
    out = tensors[0]
    for t in tensors[1:]:
        out = out + t
    return out / len(tensors)


def ensemble_from_config(config: dict, build: Callable[[dict], nn.Module]) -> Ensemble:
    """A fresh :class:`Ensemble` from its ``config`` (``{"ensemble": {"nets": [...]}}``),
    each member built by ``build(member_config)`` (e.g. :func:`~pinn_sine.nets.net_from_config`)."""
    spec = config.get("ensemble") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("nets"), list) or not spec["nets"]:
        raise ValueError(f"an ensemble config holds {{'ensemble': {{'nets': [member configs]}}}}, got {config!r}.")
    return Ensemble([build(c) for c in spec["nets"]])
