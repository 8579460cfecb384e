"""``build_net``: a problem's network from an activation name, the one rule the CLI and
``compare`` share."""
from __future__ import annotations

from .base import Activation
from .classic import ReLU, Tanh
from .finer import Finer
from .fourier import FourierFeatures
from .metasin import MetaSin
from .mlp import MLP
from .sine import Sine

ACTIVATIONS = {"siren": Sine, "finer": Finer, "metasin": MetaSin, "tanh": Tanh, "relu": ReLU}
#: names :func:`build_net` takes: the activations, and "fourier-tanh", tanh behind 64
#: Fourier features of scale 1 (the classic remedy for spectral bias)
NET_NAMES = tuple(ACTIVATIONS) + ("fourier-tanh",)


def build_net(problem, activation: str = "siren", *, width: int = 128, depth: int = 3, seed: int = 0,
              omega: float | None = None, K: int | None = None, first_omega: float | None = None,
              hidden_omega: float | None = None, fourier: FourierFeatures | None = None) -> MLP:
    """The MLP for ``problem`` (its ``in_dim``, ``out_dim``) with the named activation.

    The first-layer rule: an activation with an ``omega`` (Sine, Finer) takes
    ``first_omega``, else the problem's ``default_first_omega``; others take none.

    Args:
        problem: anything with ``in_dim``, ``out_dim`` and ``default_first_omega``.
        activation: one of :data:`NET_NAMES`.
        omega, K: the activation's own omega (Sine, Finer) and components (MetaSin);
            None keeps its default.
        first_omega, hidden_omega, fourier, width, depth, seed: as :class:`MLP` takes them.
    Raises:
        ValueError: an unknown name (the valid ones listed), or an option the
            activation does not take.
    """
    dims = [getattr(problem, k, None) for k in ("in_dim", "out_dim")]
    if isinstance(problem, str) or not all(isinstance(d, int) for d in dims):
        raise TypeError(f"problem must be a Problem instance (anything with in_dim and out_dim), got {problem!r}; "
                        "e.g. build_net(Poisson2D(), \"siren\").")
    if activation == "fourier-tanh":
        act: Activation = Tanh()
        fourier = FourierFeatures(64, 1.0) if fourier is None else fourier
    else:
        try:
            cls = ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(f'Invalid activation "{activation}". Must be one of {list(NET_NAMES)}.') from None
        kwargs = {k: v for k, v in (("omega", omega), ("K", K)) if v is not None}
        try:
            act = cls(**kwargs)
        except TypeError:
            raise ValueError(f"activation {activation} does not take {sorted(kwargs)}.") from None
    if first_omega is None and hasattr(act, "omega"):
        first_omega = getattr(problem, "default_first_omega", None)
    return MLP(problem.in_dim, problem.out_dim, width, depth, activation=act, first_omega=first_omega,
               hidden_omega=hidden_omega, fourier=fourier, seed=seed)


def net_from_config(config: dict) -> MLP:
    """A fresh :class:`MLP` of the architecture ``config`` describes (an ``MLP.config``,
    as a checkpoint's meta holds it); its weights are a new init (load a state dict).

    Raises:
        ValueError: an activation name this package does not know, or a config
            without the keys an MLP needs.
    """
    missing = [k for k in ("in_dim", "out_dim", "width", "depth", "activation") if k not in config]
    if missing:
        raise ValueError(f"the network config lacks {missing}; it holds {sorted(config)}.")
    name = config["activation"]
    if name not in ACTIVATIONS:
        raise ValueError(f'Invalid activation "{name}" in the network config. Must be one of {sorted(ACTIVATIONS)}.')
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("activation_args") or {}).items()}
    act = ACTIVATIONS[name](**args)
    fourier = config.get("fourier")
    return MLP(config["in_dim"], config["out_dim"], config["width"], config["depth"], activation=act,
               first_omega=config.get("first_omega"), hidden_omega=config.get("hidden_omega"),
               fourier=None if fourier is None else FourierFeatures(**fourier), seed=config.get("seed", 0))
