"""A nonlinear PDE written by a user: the Fisher-KPP reaction-diffusion equation.

    u_t = D u_xx + r u (1 - u)   on (t, x) in [0, t_max] x [-L, L],

with the exact travelling front of Ablowitz & Zeppetella (1979),

    u(t, x) = (1 + exp(kappa (x - v t)))^-2,   kappa = sqrt(r / (6 D)),   v = 5 sqrt(r D / 6),

as initial and wall data and as the reference. Nothing here is special to nonlinearity:
the residual reads u and its derivatives from the jets, and the Gauss-Newton stages
linearise it like any other (``tests/test_examples.py`` checks the residual Jacobian
against reverse mode and trains it with Gauss-Newton). Run ``python examples/fisher1d.py``.
"""
import math

import numpy as np
import torch

from pinn_sine import sampling, train
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.problems import Problem, Term
from pinn_sine.validation import ReferenceField, fd


class Fisher1D(Problem):
    name = "fisher1d"
    input_names = ("t", "x")
    derivatives = {"interior": DerivativeSpec(first=("t",), second=(("x", "x"),)),
                   "initial": DerivativeSpec(), "boundary": DerivativeSpec()}
    bad_params = ({"D": 0.0}, {"r": -1.0}, {"t_max": 0.0})
    check_resolution = 17

    def __init__(self, D: float = 0.1, r: float = 1.0, *, length: float = 5.0, t_max: float = 2.0):
        for name, value in (("D", D), ("r", r), ("length", length), ("t_max", t_max)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}; e.g. D=0.1, r=1.0.")
        self.D, self.r, self.length, self.t_max = float(D), float(r), float(length), float(t_max)
        self.bounds = ((0.0, self.t_max), (-self.length, self.length))
        self.kappa, self.speed = math.sqrt(r / (6 * D)), 5 * math.sqrt(r * D / 6)

    def exact(self, x):
        z = self.kappa * (x[:, 1:2] - self.speed * x[:, 0:1])
        return (1 + torch.exp(z)) ** -2

    def sample(self, n, generator, *, progress=1.0):
        initial = sampling.box(n // 4, self.bounds, generator) * torch.tensor([0.0, 1.0])
        return {"interior": sampling.box(n, self.bounds, generator), "initial": initial,
                "boundary": sampling.box_boundary(n // 4, self.bounds, generator, dims=(1,))}

    def terms(self):
        return (Term("pde", ("interior",), "pde", self.reaction_diffusion),
                Term("initial", ("initial",), "initial", self.data("initial")),
                Term("boundary", ("boundary",), "boundary", self.data("boundary")))

    def reaction_diffusion(self, jets, batch):
        j = jets["interior"]
        u = j.u
        return (j.d("t") - self.D * j.d2("x", "x") - self.r * u * (1 - u)) / self.r

    def data(self, key):
        def residual(jets, batch):
            u = jets[key].u
            return u - self.exact(batch[key].double()).to(u.dtype)
        return residual

    def params(self):
        return {"D": self.D, "r": self.r, "length": self.length, "t_max": self.t_max}

    def compute_reference(self, resolution):
        t = np.linspace(0.0, self.t_max, resolution)
        x = np.linspace(-self.length, self.length, resolution)
        u = fd.on_grid(self.exact)(*np.meshgrid(t, x, indexing="ij"))
        return ReferenceField(problem="", params={}, coords={"t": t, "x": x}, fields={"u": u}, solver="exact",
                              order=0, spacing={"t": t[1], "x": x[1] - x[0]},
                              attrs={"error_estimate": 0.0, "error_method": "exact"})


def main(adam: int = 300, gauss_newton: int = 40) -> dict:
    from pinn_sine import evaluate
    from pinn_sine.nets import MLP, Tanh
    from pinn_sine.optim import Adam, GaussNewton
    from pinn_sine.problems import check_problem

    problem = Fisher1D()
    check_problem(problem)  # contract, terms, exact residual, engines, params, reference, bad parameters
    net = MLP(problem.in_dim, problem.out_dim, width=16, depth=2, activation=Tanh()).double()
    train(problem, net, stages=[Adam(adam, lr=1e-2), GaussNewton(gauss_newton, batch=256)], batch=256, seed=0,
          progress=False)
    return evaluate(net, problem.reference(resolution=65))


if __name__ == "__main__":
    print(main())
