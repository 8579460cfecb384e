"""pinn_sine: physics-informed neural networks with periodic activations.

    from pinn_sine.problems import Poisson2D
    from pinn_sine.nets import MLP, Sine
    from pinn_sine import train, evaluate, march
"""
__version__ = "0.1.0"

from .metrics import MaxAbs, Metric, RelL2  # noqa: E402
from .stall import Stall  # noqa: E402
from .train import TrainResult, train  # noqa: E402
from .marching import MarchResult, march  # noqa: E402  (after train: the import order of its modules)
from .validation.evaluate import evaluate  # noqa: E402

__all__ = ["train", "march", "evaluate", "TrainResult", "MarchResult", "Stall", "Metric", "RelL2", "MaxAbs", "__version__"]
