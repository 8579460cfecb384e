"""Burgers1D: the viscous Burgers equation with a sine start, its exact (Cole-Hopf) solution."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .. import sampling
from .._checks import non_negative, positive
from ..derivatives import DerivativeSpec, Jet
from ..validation.reference import ReferenceField
from .base import Problem, Term

#: the step of the Cole-Hopf quadrature's trapezoid nodes in z (class docstring); halving it
#: changes u by < 3e-15 at nu = 0.01/pi, < 2e-14 at nu = 1e-3/pi
Z_STEP = 0.05
#: points per slice of the exact solution (the slice's (n, nodes) arrays stay ~10 MB)
EXACT_SLICE = 2048


class Burgers1D(Problem):
    """The viscous Burgers equation from a sine (Basdevant et al. 1986; the PINN
    benchmark of Raissi, Perdikaris & Karniadakis 2019):

        u_t + u u_x = nu u_xx            x in [-1, 1], t in [0, t_max]
        u(0, x) = -sin(pi x),            u(t, -1) = u(t, 1) = 0

    With nu = 0.01 / pi (the default) a shock of width ~ nu forms at x = 0 around
    t = 1 / pi; at x = 0 the slope peaks at |u_x| = 152.00516 at t = 1.6037 / pi
    (Basdevant et al.; reproduced in the tests).

    Exact solution (Cole-Hopf, u = -2 nu phi_x / phi with phi_t = nu phi_xx):

        u(t, x) = -int sin(pi (x - a z)) F(x - a z) exp(-z^2) dz / int F(x - a z) exp(-z^2) dz,

    a = sqrt(4 nu t), F(y) = exp(-cos(pi y) / (2 pi nu)) (the 2-periodic, odd start
    keeps u odd about x = 0 and x = 1, so u(t, +-1) = 0). F spans e^{+-1/(2 pi nu)}
    (e^{+-50} by default), so the integrand is handled as a softmax of its exponent
    E(z) = -z^2 - cos(pi y) / (2 pi nu) over trapezoid nodes z in [-z_max, z_max], step
    0.05, z_max = sqrt(1 / (pi nu) + 80) (beyond it E is e^-80 below its maximum; 13.4 by
    default). The integrand is entire and decays like e^{-z^2}, so the trapezoid rule
    converges geometrically (E'' = -2 + 2 pi t cos(pi y): a peak is >= 0.35 wide in z);
    in float64 it agrees with a rule of a quarter of the step to ~3e-15 (nu = 0.01/pi),
    and its derivatives (autograd, through the same sum) leave a PDE residual ~1e-13.

    Inputs ("t", "x"); point sets "interior" (needs u_t, u_x, u_xx), "initial" (t = 0)
    and "boundary" (x = +-1). Loss terms, unnormalised as in Raissi et al. (u and its
    derivatives are O(1) away from the shock): "pde" mean (u_t + u u_x - nu u_xx)^2,
    "initial" mean (u + sin(pi x))^2, "boundary" mean u^2.

    The reference is the exact solution on the grid (solver "exact"); its
    ``error_estimate`` is the relative L2 difference from the rule of half the step
    (``error_method`` "refinement").

    Args:
        nu: viscosity (>= 1e-3 / pi, the smallest the quadrature is checked for).
        t_max: final time (> 0).
        sampler: interior sampler, "uniform", "sobol" or "lhs".
        initial_fraction, boundary_fraction: initial and boundary points per interior
            point (> 0).
    """

    name = "burgers1d"
    bad_params = ({"nu": 0.0}, {"t_max": -1.0}, {"initial_fraction": 0.0}, {"boundary_fraction": -1.0})
    check_resolution = 9
    input_names = ("t", "x")
    out_dim = 1
    default_batch = 2048
    # an odd count puts a node at the shock, x = 0
    default_resolution = 257
    default_lr = 1e-3
    #: ``pinn-sine solve burgers1d``'s set-up (README, "Nonlinear PDEs"; benchmarks/burgers.py
    #: and benchmarks/nonlinear.py): a float64 tanh 20 x 3 (921 parameters), 1000 Adam
    #: steps, then Gauss-Newton on 2048 interior points redrawn by their residual (RAD)
    #: every 25 steps: 8.9e-5 in 450 s where Adam reached 7.9e-2 and Adam + L-BFGS 4.2e-2,
    #: and a fixed uniform batch stays at ~1e-2 (its few shock points are fitted to 1e-10).
    #: Gauss-Newton steps take about 0.13 s each on one thread, so about 10 minutes. No
    #: stall stop (as measured): RAD redraws make the loss jump, which reads as a stall.
    recipe = {"activation": "tanh", "width": 20, "depth": 3, "dtype": "float64", "stall": "off",
              "stage": ["adam:steps=1000", "gauss_newton:steps=4000,batch=2048,resample_every=25,adaptive=rad"],
              "problem": {"initial_fraction": 0.125, "boundary_fraction": 0.125}}

    def __init__(self, nu: float = 0.01 / math.pi, *, t_max: float = 1.0, sampler: str = "uniform",
                 initial_fraction: float = 0.25, boundary_fraction: float = 0.25):
        self.nu = positive("nu", nu, "the viscosity must be positive, e.g. nu=0.01/pi.")
        if self.nu < 1e-3 / math.pi:
            raise ValueError(f"nu must be >= 1e-3/pi (the exact solution's quadrature), got nu={nu!r}; "
                             "use e.g. nu=0.01/pi.")
        self.t_max = positive("t_max", t_max, "use e.g. t_max=1.0.")
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.sampler = sampler
        for name, value in (("initial_fraction", initial_fraction), ("boundary_fraction", boundary_fraction)):
            if not non_negative(name, value, "a number of points per interior point", f"use e.g. {name}=0.25") > 0:
                raise ValueError(f"{name} must be > 0 (its condition needs points), got {name}={value!r}; "
                                 f"use e.g. {name}=0.25.")
        self.initial_fraction, self.boundary_fraction = float(initial_fraction), float(boundary_fraction)
        self.bounds = ((0.0, self.t_max), (-1.0, 1.0))
        self.derivatives = {"interior": DerivativeSpec(first=("t", "x"), second=(("x", "x"),)),
                            "initial": DerivativeSpec(), "boundary": DerivativeSpec()}

    # ----- data -----------------------------------------------------------------------
    def exact(self, x: Tensor) -> Tensor:
        """u(t, x) at x (n, 2) with columns (t, x) -> (n, 1), in float64 whatever x's dtype
        (cast back to it), differentiable (class docstring)."""
        return _cole_hopf(x, self.nu)

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        n_i = max(1, int(round(self.initial_fraction * n)))
        n_b = max(1, int(round(self.boundary_fraction * n)))
        interior = sampling.box(n, self.bounds, generator, self.sampler)
        initial = sampling.box(n_i, self.bounds[1:], generator, self.sampler)
        return {"interior": interior,
                "initial": torch.cat([torch.zeros(n_i, 1), initial], dim=1),
                "boundary": sampling.box_boundary(n_b, self.bounds, generator, dims=(1,))}

    def _pde_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u_t + u u_x - nu u_xx at the interior points (n, 1)."""
        j = jets["interior"]
        return j.d("t") + j.u * j.d("x") - self.nu * j.d2("x", "x")

    def _initial_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u + sin(pi x) at the t = 0 points (n_0, 1)."""
        j = jets["initial"]
        return j.u + torch.sin(math.pi * batch["initial"][:, 1:2].to(j.u.dtype))

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u at the x = +-1 points (n_b, 1)."""
        return jets["boundary"].u

    def terms(self) -> tuple[Term, ...]:
        return (Term("pde", ("interior",), "pde", self._pde_residual),
                Term("initial", ("initial",), "initial", self._initial_residual),
                Term("boundary", ("boundary",), "boundary", self._boundary_residual))

    def params(self) -> dict:
        return {"nu": self.nu, "t_max": self.t_max}

    # ----- reference --------------------------------------------------------------------
    def compute_reference(self, resolution: int) -> ReferenceField:
        """The exact solution on ``resolution`` x ``resolution`` nodes of [0, t_max] x [-1, 1]."""
        coords = self.grid(resolution)
        pts = torch.as_tensor(np.stack([m.ravel() for m in np.meshgrid(*coords.values(), indexing="ij")], 1),
                              dtype=torch.float64)
        with torch.no_grad():
            u = _cole_hopf(pts, self.nu).numpy().reshape(resolution, resolution)
            fine = _cole_hopf(pts, self.nu, step=Z_STEP / 2).numpy().reshape(resolution, resolution)
        spacing = {k: float(c[1] - c[0]) for k, c in coords.items()}
        estimate = float(np.linalg.norm(u - fine) / np.linalg.norm(fine))
        return ReferenceField(problem="", params={}, coords=coords, fields={"u": u}, solver="exact", order=0,
                              spacing=spacing, attrs={"error_estimate": estimate, "error_method": "refinement",
                                                      "quadrature": f"trapezoid in z, step {Z_STEP:g}, "
                                                                    f"|z| <= {_z_max(self.nu):.4g}"})


def _cole_hopf(x: Tensor, nu: float, *, step: float = Z_STEP) -> Tensor:
    """The Cole-Hopf solution of Burgers1D at x (n, 2) (columns t, x) -> (n, 1), computed
    in float64 slice by slice (:class:`Burgers1D`)."""
    z_max = _z_max(nu)
    z = torch.arange(-z_max, z_max + step / 2, step, dtype=torch.float64, device=x.device)
    out = []
    for s in range(0, x.shape[0], EXACT_SLICE):
        p = x[s:s + EXACT_SLICE].double()
        a = torch.sqrt(4.0 * nu * p[:, :1])
        y = p[:, 1:2] - a * z  # (n, nodes)
        weight = torch.softmax(-z * z - torch.cos(math.pi * y) / (2.0 * math.pi * nu), dim=1)
        out.append(-(weight * torch.sin(math.pi * y)).sum(1, keepdim=True))
    return (torch.cat(out) if out else x.new_zeros(0, 1, dtype=torch.float64)).to(x.dtype)


def _z_max(nu: float) -> float:
    """Half the quadrature's interval in z: E(z) there is e^-80 below its maximum."""
    return math.sqrt(1.0 / (math.pi * nu) + 80.0)
