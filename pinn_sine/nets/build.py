"""``build_net``: a problem's network from an activation name, the one rule the CLI and
``compare`` share."""
from __future__ import annotations

from collections.abc import Mapping

from .base import Activation
from .classic import ReLU, Tanh
from .finer import Finer
from .fourier import FourierFeatures
from .metasin import MetaSin
from .mlp import MLP
from .periodic import PeriodicEncoding
from .sine import Sine

ACTIVATIONS = {"siren": Sine, "finer": Finer, "metasin": MetaSin, "tanh": Tanh, "relu": ReLU}
#: names :func:`build_net` takes: the activations, and "fourier-tanh", tanh behind 64
#: Fourier features of scale 1 (the classic remedy for spectral bias)
NET_NAMES = tuple(ACTIVATIONS) + ("fourier-tanh",)


def build_net(problem, activation: str = "siren", *, width: int = 128, depth: int = 3, seed: int = 0,
              omega: float | None = None, K: int | None = None, first_omega: float | None = None,
              hidden_omega: float | None = None, fourier: FourierFeatures | None = None,
              periodic: Mapping[str, float] | PeriodicEncoding | None = None) -> MLP:
    """The MLP for ``problem`` (its ``in_dim``, ``out_dim``) with the named activation.

    The first-layer rule: an activation with an ``omega`` (Sine, Finer) takes
    ``first_omega``, else the problem's ``default_first_omega``; others take none.

    The periodicity rule: the network is exactly periodic (a :class:`PeriodicEncoding`
    of one mode) in the inputs ``problem.periodic`` names, unless ``periodic`` says
    otherwise: a mapping name -> period (or a PeriodicEncoding, for its modes) replaces
    the problem's, ``{}`` switches it off. With Fourier features too ("fourier-tanh"),
    the features follow the periodic encoding.

    Args:
        problem: anything with ``in_dim``, ``out_dim`` and ``default_first_omega``.
        activation: one of :data:`NET_NAMES`.
        omega, K: the activation's own omega (Sine, Finer) and components (MetaSin);
            None keeps its default.
        first_omega, hidden_omega, fourier, width, depth, seed: as :class:`MLP` takes them.
        periodic: None (the problem's ``periodic``), a mapping, a PeriodicEncoding or {}.
    Raises:
        ValueError: an unknown name (the valid ones listed), an option the
            activation does not take, or periods that are not the problem's inputs
            or not finite and > 0 (the problem's own declaration included).
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
    encoding = _periodic_encoding(problem, periodic)
    names = tuple(getattr(problem, "input_names", ()) or ())
    return MLP(problem.in_dim, problem.out_dim, width, depth, activation=act, first_omega=first_omega,
               hidden_omega=hidden_omega, fourier=fourier, periodic=encoding,
               input_names=names if encoding is not None else None, seed=seed)


def _periodic_encoding(problem, periodic) -> PeriodicEncoding | None:
    """The unbound encoding the periodicity rule of :func:`build_net` gives, checked
    against the problem's input names (a ValueError that says whose periods are wrong)."""
    declared = periodic is None
    if declared:
        periodic = getattr(problem, "periodic", None) or {}
    if isinstance(periodic, Mapping) and not periodic:
        return None
    source = f"{type(problem).__name__}.periodic" if declared else "periodic"
    try:
        encoding = periodic if isinstance(periodic, PeriodicEncoding) else PeriodicEncoding(periodic)
        encoding.build(tuple(getattr(problem, "input_names", ()) or ()))
    except ValueError as err:
        fix = (" (the problem declares it: pass periodic={} to build_net, or --periodic none, to switch it off)"
               if declared else "")
        raise ValueError(f"{source} = {periodic!r} cannot be honoured: {err}{fix}") from None
    return encoding


def net_from_config(config: dict) -> MLP:
    """A fresh :class:`MLP` of the architecture ``config`` describes (an ``MLP.config``,
    as a checkpoint's meta holds it; a piecewise-in-time network's config,
    ``{"piecewise": ...}``, gives a :class:`~pinn_sine.nets.piecewise.PiecewiseInTime` of
    fresh MLPs; an ensemble's, ``{"ensemble": ...}``, an
    :class:`~pinn_sine.nets.ensemble.Ensemble`); its weights are a new init (load a state dict).

    Raises:
        ValueError: an activation name this package does not know, or a config
            without the keys an MLP needs.
    """
    if isinstance(config, dict) and "piecewise" in config:  # one network per time window (pinn_sine.march)
        from .piecewise import piecewise_from_config

        return piecewise_from_config(config, net_from_config)
    if isinstance(config, dict) and "ensemble" in config:  # a snapshot ensemble (callbacks.SnapshotEnsemble)
        from .ensemble import ensemble_from_config

        return ensemble_from_config(config, net_from_config)
    missing = [k for k in ("in_dim", "out_dim", "width", "depth", "activation") if k not in config]
    if missing:
        raise ValueError(f"the network config lacks {missing}; it holds {sorted(config)}.")
    name = config["activation"]
    if name not in ACTIVATIONS:
        raise ValueError(f'Invalid activation "{name}" in the network config. Must be one of {sorted(ACTIVATIONS)}.')
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("activation_args") or {}).items()}
    act = ACTIVATIONS[name](**args)
    fourier, periodic = config.get("fourier"), config.get("periodic")
    if periodic is not None:
        if not isinstance(periodic, Mapping) or not {"periods", "modes", "input_names"} <= set(periodic):
            raise ValueError(f"the network config's periodic entry must hold periods, modes and input_names, got "
                             f"{periodic!r}.")
        encoding, names = PeriodicEncoding(periodic["periods"], periodic["modes"]), periodic["input_names"]
    else:
        encoding, names = None, None
    return MLP(config["in_dim"], config["out_dim"], config["width"], config["depth"], activation=act,
               first_omega=config.get("first_omega"), hidden_omega=config.get("hidden_omega"),
               fourier=None if fourier is None else FourierFeatures(**fourier), periodic=encoding,
               input_names=names, seed=config.get("seed", 0))
