"""The CG solver's starting guess and the CG descent's reused Nystrom sketch."""
import torch

from pinn_sine.optim.descents import NormalCG
from pinn_sine.optim.solvers import CG, conjugate_gradients


def _spd(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return A @ A.T + n * torch.eye(n, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)


def test_cg_from_a_guess():
    A, b = _spd()
    x = torch.linalg.solve(A, b)
    op = lambda v: A @ v  # noqa: E731
    _, cold = conjugate_gradients(op, b, rtol=1e-10, max_iter=200)
    y, warm = conjugate_gradients(op, b, rtol=1e-10, max_iter=200, x0=x + 1e-6 * b)
    assert warm["iterations"] < cold["iterations"] and torch.allclose(y, x, atol=1e-9, rtol=0)
    y, exact = conjugate_gradients(op, b, rtol=1e-10, max_iter=200, x0=x)
    assert exact["iterations"] == 0 and torch.equal(y, x)
    # a guess worse than 0 is dropped: the run is the cold one
    y, bad = conjugate_gradients(op, b, rtol=1e-10, max_iter=200, x0=-1e3 * x)
    assert bad["iterations"] == cold["iterations"] and torch.allclose(y, x, atol=1e-9, rtol=0)


class _Lin:
    """A linearization of a dense J (what NormalCG reads)."""

    def __init__(self, J, r):
        self.J, self.r = J, r
        self.n_rows, self.n_cols = J.shape
        self.device, self.dtype = J.device, J.dtype
        self.products = 0

    def mv(self, v):
        self.products += 1
        return self.J @ v

    def rmv(self, u):
        return self.J.T @ u


def test_cg_descent_reuses_its_sketch_and_starts_warm():
    g = torch.Generator().manual_seed(3)
    J = torch.randn(80, 40, generator=g, dtype=torch.float64)
    lin = _Lin(J, torch.randn(80, generator=g, dtype=torch.float64))
    exact = torch.linalg.solve(J.T @ J + 1e-3 * torch.eye(40, dtype=torch.float64), -J.T @ lin.r)
    d = NormalCG(rank=10, refresh_every=2, warm_start=True)
    d.start(torch.Generator().manual_seed(0))
    solver = CG(rtol=1e-12, max_iter=200)
    first = d.direction(lin, 1e-3, solver)
    U = d._factors[0]
    assert torch.allclose(first.d, exact, atol=1e-8, rtol=0)
    again = d.direction(lin, 1e-3, solver)  # the same system: the sketch is reused, CG starts at the answer
    assert d._factors[0] is U and again.info["cg_iterations"] <= 1
    d.update(True, 1.0)
    d.direction(lin, 1e-2, solver)
    assert d._factors[0] is U  # one accepted step: still within refresh_every=2
    d.update(True, 1.0)
    d.direction(lin, 1e-2, solver)
    assert d._factors[0] is not U  # two: a fresh sketch
    state = d.state_dict()
    fresh = NormalCG(rank=10, refresh_every=2, warm_start=True)
    fresh.load_state_dict(state)
    assert torch.equal(fresh._factors[0], d._factors[0]) and fresh._age == d._age and torch.equal(fresh._last, d._last)
    assert NormalCG().state_dict() == {} and NormalCG().describe() == {"name": "cg", "preconditioner": "nystrom",
                                                                         "rank": 50}
