"""pinn_sine: physics-informed neural networks with periodic activations.

    from pinn_sine.problems import Poisson2D
    from pinn_sine.nets import MLP, Sine
    from pinn_sine import train, evaluate
"""
__version__ = "0.1.0"

from .metrics import MaxAbs, Metric, RelL2  # noqa: E402
from .stall import Stall  # noqa: E402
from .train import TrainResult, train  # noqa: E402
from .validation.evaluate import evaluate  # noqa: E402

__all__ = ["train", "evaluate", "TrainResult", "Stall", "Metric", "RelL2", "MaxAbs", "__version__"]
