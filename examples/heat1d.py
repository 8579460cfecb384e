"""A new PDE end to end: the 1-D heat equation, defined with the public extension API.

    u_t = nu u_xx on (t, x) in [0, t_max] x [0, 1],  u(0, x) = sin(pi x),  u(t, 0) = u(t, 1) = 0,

exact solution u = exp(-nu pi^2 t) sin(pi x); the reference is a Crank-Nicolson solve.
Run ``python examples/heat1d.py`` (a short training run) or see README, "Define your
own PDE". ``tests/test_examples.py`` runs it in CI.

It can be marched in time (``pinn_sine.march``): ``window(t_start, t_end, initial)``
gives the problem on [t_start, t_end] starting from ``initial``, the value u(t_start, x)
(a ``pinn_sine.problems.windows.InitialData``, e.g. the previous window's network).
"""
import math

import numpy as np
import scipy.sparse as sp
import torch

from pinn_sine import sampling, train
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.problems import Problem, Term
from pinn_sine.validation import fd


class Heat1D(Problem):
    name = "heat1d"
    input_names = ("t", "x")
    derivatives = {"interior": DerivativeSpec(first=("t",), second=(("x", "x"),)),
                   "initial": DerivativeSpec(), "boundary": DerivativeSpec()}
    bad_params = ({"nu": 0.0}, {"t_max": -1.0})
    check_resolution = 17

    def __init__(self, nu: float = 0.1, *, t_max: float = 1.0, t_start: float = 0.0, initial=None):
        if not (nu > 0 and 0 <= t_start < t_max):
            raise ValueError(f"nu must be > 0 and 0 <= t_start < t_max, got nu={nu}, t_start={t_start}, "
                             f"t_max={t_max}; use e.g. nu=0.1, t_max=1.0.")
        self.nu, self.t_max, self.t_start, self.initial = float(nu), float(t_max), float(t_start), initial
        self.bounds = ((self.t_start, self.t_max), (0.0, 1.0))

    def window(self, t_start, t_end, initial=None):
        # marching (pinn_sine.march): the same equation on [t_start, t_end] from the data `initial`
        return Heat1D(self.nu, t_max=t_end, t_start=t_start, initial=initial)

    def exact(self, x):
        if self.initial is not None:
            raise NotImplementedError("a window from a network's data has no known exact solution")
        return torch.exp(-self.nu * math.pi ** 2 * x[:, :1]) * torch.sin(math.pi * x[:, 1:])

    def sample(self, n, generator, *, progress=1.0):
        interior = sampling.box(n, self.bounds, generator)
        initial = sampling.box(n // 4, self.bounds, generator) * torch.tensor([0.0, 1.0]) + torch.tensor(
            [self.t_start, 0.0])
        return {"interior": interior, "initial": initial,
                "boundary": sampling.box_boundary(n // 4, self.bounds, generator, dims=(1,))}

    def terms(self):
        # Each term names the point sets its rows read; row i is the residual at point i.
        return (Term("pde", ("interior",), "pde", self.heat_residual),
                Term("initial", ("initial",), "initial", self.initial_residual),
                Term("boundary", ("boundary",), "boundary", lambda jets, batch: jets["boundary"].u))

    def heat_residual(self, jets, batch):
        ji = jets["interior"]
        return (ji.d("t") - self.nu * ji.d2("x", "x")) / (self.nu * math.pi ** 2)

    def initial_residual(self, jets, batch):
        x0 = batch["initial"][:, 1:]
        if self.initial is not None:
            return jets["initial"].u - self.initial.at(x0)[0]
        return jets["initial"].u - math.exp(-self.nu * math.pi ** 2 * self.t_start) * torch.sin(math.pi * x0)

    def params(self):
        if not self.t_start and self.initial is None:
            return {"nu": self.nu, "t_max": self.t_max}
        return {"nu": self.nu, "t_max": self.t_max, "t_start": self.t_start,
                "initial": None if self.initial is None else self.initial.record()}

    def reference_params(self, resolution):
        params = super().reference_params(resolution)
        params.pop("initial", None)  # a window's reference is the whole problem's solution on its times
        return params

    def compute_reference(self, resolution):
        # Crank-Nicolson on the interior nodes: (I - r/2 D) u^{k+1} = (I + r/2 D) u^k, r = nu dt / h^2.
        t, x = np.linspace(self.t_start, self.t_max, resolution), np.linspace(0.0, 1.0, resolution)
        h, dt, m = x[1], t[1] - t[0], resolution - 2
        D = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(m, m)) * (self.nu * dt / h ** 2)
        step, explicit = fd.sparse_lu(sp.identity(m) - D / 2), sp.identity(m) + D / 2
        u = np.zeros((resolution, resolution))
        u[0, 1:-1] = np.exp(-self.nu * np.pi ** 2 * self.t_start) * np.sin(np.pi * x[1:-1])  # the true u(t_start)
        for k in range(1, resolution):
            u[k, 1:-1] = step.solve(explicit @ u[k - 1, 1:-1])
        exact = fd.on_grid(Heat1D(self.nu, t_max=self.t_max).exact)(*np.meshgrid(t, x, indexing="ij"))
        sol = fd.FDSolution(coords={"t": t, "x": x}, fields={"u": u}, solver="crank-nicolson", order=2,
                            spacing={"t": dt, "x": h})
        return sol.to_reference(attrs={"error_estimate": float(np.linalg.norm(u - exact) / np.linalg.norm(exact)),
                                       "error_method": "exact"})


def main(steps: int = 1000) -> dict:
    from pinn_sine import evaluate
    from pinn_sine.nets import MLP, Sine
    from pinn_sine.problems import check_problem

    problem = Heat1D()
    check_problem(problem)                      # the conformance suite: contract, exact residual, engines, ...
    net = MLP(problem.in_dim, problem.out_dim, width=32, depth=2, activation=Sine(), first_omega=2.0)
    train(problem, net, steps=steps, batch=256, seed=0, progress=False)
    return evaluate(net, problem.reference(resolution=65))


if __name__ == "__main__":
    print(main())
