"""Networks built from periodic activations: SIREN, FINER, MetaSin (and tanh/ReLU baselines)."""
from .base import Activation
from .build import ACTIVATIONS, NET_NAMES, build_net, net_from_config
from .classic import ReLU, Tanh
from .ensemble import Ensemble
from .finer import Finer
from .fourier import FourierFeatures
from .metasin import MetaSin
from .mlp import MLP
from .periodic import PeriodicEncoding
from .sine import Sine

__all__ = ["Activation", "MLP", "Ensemble", "Sine", "Finer", "MetaSin", "Tanh", "ReLU", "FourierFeatures",
           "PeriodicEncoding", "ACTIVATIONS", "NET_NAMES", "build_net", "net_from_config"]
