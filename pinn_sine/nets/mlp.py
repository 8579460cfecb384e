"""The multilayer perceptron every problem is solved with."""
from __future__ import annotations

import inspect
import numbers
import os

import torch
from torch import Tensor, nn

from .base import Activation
from .fourier import FourierFeatures
from .periodic import PeriodicEncoding
from .sine import Sine


#: sizes (width, depth, components, features) must stay below this (torch's int32 sizes)
MAX_SIZE = 2**31
#: seeds are integers in [0, MAX_SEED): torch's generators take 64 bits, and a stage's
#: generator adds its index to the run's seed
MAX_SEED = 2**63


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or a ValueError unless it is an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {name}={seed!r}.")
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {name}={seed!r}.")
    return int(seed)


def _physical_memory() -> int | None:
    """Bytes of physical memory, where the OS says (None elsewhere)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def activation_args(activation: Activation) -> dict:
    """The constructor arguments of ``activation`` read back from its attributes of the
    same names (JSON values), so that a network config rebuilds it."""
    out = {}
    for name, p in inspect.signature(type(activation).__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or not hasattr(activation, name):
            continue
        value = getattr(activation, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


class MLP(nn.Module):
    """u(x) = W_L sigma_{L-1}( ... sigma_1(W_1 gamma(x) + b_1) ... ) + b_L.

    ``depth`` hidden layers of ``width`` units, each a Linear followed by its own copy
    of ``activation`` (per-channel parameters such as MetaSin's are per layer), then a
    linear output layer. gamma is the identity, a :class:`FourierFeatures` encoding, a
    :class:`PeriodicEncoding` (u exactly periodic in the inputs it names), or both: the
    periodic encoding followed by the Fourier features.

    Initialisation comes from the activation: SIREN's for Sine/Finer/MetaSin (first
    layer U(-1/n, 1/n), hidden U(-sqrt(6/n)/omega, +sqrt(6/n)/omega)), Glorot for
    Tanh/ReLU. ``first_omega`` and ``hidden_omega`` override a sine-type activation's
    omega in the first layer and in the others (the output layer is initialised with
    the hidden omega).

    Args:
        in_dim, out_dim: input and output sizes (a problem's ``in_dim``/``out_dim``).
        width: units per hidden layer (>= 1).
        depth: number of hidden layers (>= 1).
        activation: an :class:`Activation` (default ``Sine(30)``).
        first_omega, hidden_omega: see above; only for Sine and Finer.
        fourier: an optional :class:`FourierFeatures` input encoding.
        periodic: an optional :class:`PeriodicEncoding`; needs ``input_names``.
        input_names: the names of the inputs, in order (a problem's ``input_names``),
            which the periodic encoding's periods refer to.
        seed: seed of the explicit generator all initial weights are drawn from.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int = 128, depth: int = 3, *,
                 activation: Activation | None = None, first_omega: float | None = None,
                 hidden_omega: float | None = None, fourier: FourierFeatures | None = None,
                 periodic: PeriodicEncoding | None = None, input_names: tuple[str, ...] | None = None,
                 seed: int = 0):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width), ("depth", depth)):
            if isinstance(value, bool) or not (isinstance(value, numbers.Integral) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}.")
            if value >= MAX_SIZE:
                raise ValueError(f"{name} must be an integer >= 1 and < 2**31 (a torch size), got {name}={value!r}.")
        in_dim, out_dim, width, depth = int(in_dim), int(out_dim), int(width), int(depth)
        activation = Sine() if activation is None else activation
        if not isinstance(activation, Activation):
            raise TypeError(f"activation must be an Activation instance such as Sine(30.0), got {activation!r}.")
        if fourier is not None and not isinstance(fourier, FourierFeatures):
            raise TypeError(f"fourier must be a FourierFeatures(n_features, scale) or None, got {fourier!r}; "
                            "e.g. fourier=FourierFeatures(64, 1.0).")
        if periodic is not None and not isinstance(periodic, PeriodicEncoding):
            raise TypeError(f"periodic must be a PeriodicEncoding(periods, modes) or None, got {periodic!r}; "
                            "e.g. periodic=PeriodicEncoding({'x': 2.0}).")
        if input_names is not None:
            input_names = tuple(input_names)
            if len(input_names) != in_dim:
                raise ValueError(f"input_names must name the {in_dim} inputs, got {input_names!r}; pass the "
                                 "problem's input_names.")
        if periodic is not None and input_names is None:
            raise ValueError(f"MLP(periodic={periodic!r}) needs input_names (the problem's, e.g. ('t', 'x')) to find "
                             "the periodic inputs; build_net passes them.")
        seed = check_seed(seed)
        n_in = (2 * fourier.n_features if fourier is not None
                else periodic.channels(in_dim) if periodic is not None else in_dim)
        params = (n_in + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * out_dim
        memory = _physical_memory()
        if memory is not None and 4 * params > memory:
            raise ValueError(f"MLP(width={width}, depth={depth}): the network's {params:.3g} parameters cannot be "
                             f"allocated ({4 * params / 2**30:.3g} GiB in float32; this machine has "
                             f"{memory / 2**30:.3g} GiB); use a smaller width or depth.")
        generator = torch.Generator().manual_seed(seed)
        self.in_dim, self.out_dim, self.width, self.depth = in_dim, out_dim, width, depth
        if periodic is not None:
            self.encoding = periodic.build(input_names, fourier=fourier, generator=generator)
        else:
            self.encoding = fourier.build(in_dim, generator) if fourier is not None else None
        n_in = self.encoding.out_dim if self.encoding is not None else in_dim
        # A Fourier encoding already spreads the spectrum: the first linear layer is
        # then an ordinary hidden layer as far as initialisation goes. A periodic
        # encoding alone does not: its channels are the inputs' lowest harmonics,
        # bounded like the inputs, so the first layer keeps its first-layer init.
        first_is_input = fourier is None
        self.linears = nn.ModuleList()
        self.activations = nn.ModuleList()
        try:
            for i in range(depth):
                first = i == 0
                act = activation.for_layer(width, first=first,
                                           omega=first_omega if first else hidden_omega, generator=generator)
                layer = nn.Linear(n_in if first else width, width)
                act.init_linear(layer, first=first and first_is_input, generator=generator)
                self.linears.append(layer)
                self.activations.append(act)
            out = nn.Linear(width, out_dim)
        except RuntimeError as err:  # an activation's own parameters (MetaSin's K per channel) too many
            if "allocate" not in str(err):
                raise
            raise ValueError(f"MLP(width={width}, depth={depth}, activation={activation!r}): the network cannot be "
                             f"allocated ({str(err).splitlines()[0]}); use a smaller width, depth or "
                             "activation.") from None
        self.activations[-1].init_linear(out, first=False, generator=generator)
        self.linears.append(out)
        self.activation_name = activation.name
        self.config = {
            "in_dim": in_dim, "out_dim": out_dim, "width": width, "depth": depth,
            "activation": activation.name, "activation_repr": repr(activation),
            "activation_args": activation_args(activation),
            "first_omega": first_omega, "hidden_omega": hidden_omega,
            "fourier": None if fourier is None else {"n_features": fourier.n_features, "scale": fourier.scale},
            "seed": seed,
        }
        if periodic is not None:  # absent otherwise: configs of non-periodic nets stay as they were
            self.config["periodic"] = self.encoding.config()

    def forward(self, x: Tensor) -> Tensor:
        """x (n, in_dim) -> u (n, out_dim)."""
        h = self.encoding(x) if self.encoding is not None else x
        for layer, act in zip(self.linears[:-1], self.activations):
            h = act(layer(h))
        return self.linears[-1](h)

    def preactivations(self, x: Tensor) -> list[Tensor]:
        """The argument of every hidden activation (for initialisation diagnostics)."""
        h = self.encoding(x) if self.encoding is not None else x
        zs = []
        for layer, act in zip(self.linears[:-1], self.activations):
            z = layer(h)
            zs.append(z)
            h = act(z)
        return zs
