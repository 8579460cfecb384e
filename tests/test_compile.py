"""train(..., compile=True): the jet engine needs only first-order autograd, so the loss
compiles, and a compiled run follows the eager run."""
from __future__ import annotations

import pytest
import torch

from pinn_sine import train
from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import Poisson2D


@pytest.mark.timeout(600)
def test_compiled_training_matches_eager():
    problem = Poisson2D()
    runs = []
    for compiled in (False, True):
        net = MLP(2, 1, 16, 2, activation=Sine(30.0), first_omega=3.0, seed=0)
        runs.append(train(problem, net, steps=12, batch=128, log_every=4, progress=False, compile=compiled))
    eager, comp = ([h["loss"] for h in r.history] for r in runs)
    assert len(eager) == len(comp) == 3
    # Same computation, fused differently: float32 rounding only.
    assert comp == pytest.approx(eager, rel=1e-4)
    for a, b in zip(runs[0].net.parameters(), runs[1].net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
