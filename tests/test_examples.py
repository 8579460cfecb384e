"""The examples run: examples/heat1d.py and examples/advdiff2d.py, new PDEs defined with the public API only."""
import importlib.util
from pathlib import Path

import pytest

from pinn_sine.problems import PROBLEMS, check_problem, register_problem, unregister_problem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_heat1d_conforms_and_its_reference_converges(heat1d):
    problem = heat1d.Heat1D()
    assert check_problem(problem) == ["contract", "terms", "exact", "engines", "pointwise", "params", "reference",
                                      "window", "bad_params"]
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


@pytest.fixture(scope="module")
def advdiff2d():
    spec = importlib.util.spec_from_file_location("advdiff2d_example", EXAMPLES / "advdiff2d.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers AdvectionDiffusion2D
    yield module
    # leave the registry as the other tests expect it (test_problem_contract runs over PROBLEMS)
    if PROBLEMS.get("advdiff2d") is module.AdvectionDiffusion2D:
        unregister_problem("advdiff2d")


def test_advdiff2d_conforms_and_registers(advdiff2d):
    problem = advdiff2d.AdvectionDiffusion2D()
    assert check_problem(problem) == ["contract", "terms", "exact", "engines", "pointwise", "params", "reference",
                                      "bad_params"]
    held = PROBLEMS["advdiff2d"]
    assert held.__qualname__ == "AdvectionDiffusion2D"
    # a second import (the CLI's --module loader, a notebook) is harmless and keeps the first class
    spec = importlib.util.spec_from_file_location("advdiff2d_again", EXAMPLES / "advdiff2d.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert PROBLEMS["advdiff2d"] is held


def test_advdiff2d_reference_is_fourth_order(advdiff2d):
    problem = advdiff2d.AdvectionDiffusion2D()
    # fd.linear_2d(order=4), error against the exact solution: measured 4.7e-4, 2.4e-5, 1.5e-6
    errors = [problem.reference(n, cache=False).error_estimate for n in (17, 33, 65)]
    assert 12 < errors[0] / errors[1] < 24 and 12 < errors[1] / errors[2] < 24, errors


def test_advdiff2d_gauss_newton_after_adam(advdiff2d):
    small = dict(batch=256, width=16, depth=2, resolution=33, seed=0)
    # float64, 200 Adam steps then 40 Gauss-Newton steps: rel L2 2.8e-3 against the exact
    # solution when written (seeds 1 and 2: 3.1e-3, 1.3e-2); Adam alone for as many steps: 0.36
    metrics = advdiff2d.main(200, 40, **small)
    adam_only = advdiff2d.main(240, 0, **small)
    assert metrics["rel_l2_exact"] < 2e-2, metrics
    assert metrics["rel_l2_exact"] < adam_only["rel_l2_exact"] / 10, (metrics, adam_only)


@pytest.fixture(scope="module")
def fisher1d():
    spec = importlib.util.spec_from_file_location("fisher1d_example", EXAMPLES / "fisher1d.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_users_nonlinear_problem_is_linearised_exactly(fisher1d):
    """Fisher-KPP (u (1 - u) in the residual): check_problem passes, and the Gauss-Newton
    Jacobian of the nonlinear residual equals reverse mode in float64."""
    import torch

    from pinn_sine.derivatives import linearize
    from pinn_sine.derivatives.jacobian import jacobian_parameters
    from pinn_sine.nets import MLP, Tanh

    problem = fisher1d.Fisher1D()
    assert check_problem(problem) == ["contract", "terms", "exact", "engines", "pointwise", "params", "reference",
                                      "bad_params"]
    net = MLP(2, 1, width=6, depth=2, activation=Tanh(), seed=1).double()
    batch = {k: v.double() for k, v in problem.draw(12, torch.Generator().manual_seed(0)).items()}
    J = linearize(problem, net, batch, {"initial": 2.0}).materialize()
    params = jacobian_parameters(net)
    rows = []
    for term, r in problem.residuals(problem.jets(net, batch, engine="autograd"), batch).items():
        scale = (2.0 if term == "initial" else 1.0) ** 0.5 / r.shape[0] ** 0.5
        for i in range(r.shape[0]):
            g = torch.autograd.grad(r[i, 0] * scale, params, retain_graph=True)
            rows.append(torch.cat([x.reshape(-1) for x in g]))
    assert torch.allclose(J, torch.stack(rows), rtol=1e-10, atol=1e-12)


def test_gauss_newton_solves_a_users_nonlinear_problem(fisher1d):
    metrics = fisher1d.main(adam=200, gauss_newton=20)
    # Adam alone ends at ~3e-2; 20 Gauss-Newton steps take a 16 x 2 tanh net to ~1e-4 (2.4e-5 with 40)
    assert metrics["rel_l2"] < 1e-3, metrics
