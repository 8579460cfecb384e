"""The examples run: examples/heat1d.py, a new PDE defined with the public API only."""
import importlib.util
from pathlib import Path

import pytest

from pinn_sine.problems import PROBLEMS, check_problem, register_problem, unregister_problem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def heat1d():
    spec = importlib.util.spec_from_file_location("heat1d_example", EXAMPLES / "heat1d.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heat1d_conforms_and_its_reference_converges(heat1d):
    problem = heat1d.Heat1D()
    assert check_problem(problem) == ["contract", "exact", "engines", "pointwise", "params", "reference",
                                      "bad_params"]
    # Crank-Nicolson is second order in h and dt together: the error falls ~4x per halving
    errors = [problem.reference(n, cache=False).error_estimate for n in (17, 33, 65)]
    assert 3.5 < errors[0] / errors[1] < 4.5 and 3.5 < errors[1] / errors[2] < 4.5, errors


def test_heat1d_trains_end_to_end(heat1d):
    metrics = heat1d.main(steps=300)
    # 300 Adam steps of a 32 x 2 SIREN: rel L2 6.0e-3 against the reference when written
    assert metrics["rel_l2"] < 0.03, metrics


def test_heat1d_registered_for_the_cli(heat1d):
    from pinn_sine.cli import main

    register_problem(heat1d.Heat1D)
    try:
        assert PROBLEMS["heat1d"] is heat1d.Heat1D
        assert main(["reference", "heat1d", "--resolution", "17", "--nu", "0.2"]) == 0
    finally:
        unregister_problem("heat1d")
