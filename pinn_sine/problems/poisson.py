"""Poisson2D: Laplacian(u) = f on a rectangle with Dirichlet data."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .. import sampling
from .._checks import positive
from ..constraints import HardConstraint, SineFactor
from ..derivatives import DerivativeSpec, Jet
from ..images import image_digest, load_image
from ..validation.reference import ReferenceField
from .base import (Problem, Term, describe_callable, exact_laplacian, manufactured_box_batch,
                   manufactured_box_constraint, manufactured_boundary_target)
from .callables import check_solution

SUPERVISIONS = ("laplacian", "gradient")


def two_mode_solution(x: Tensor, y: Tensor) -> Tensor:
    """The default manufactured solution: a low and a high sine mode,
    u = sin(pi x) sin(pi y) + 0.25 sin(4 pi x) sin(4 pi y)."""
    return torch.sin(math.pi * x) * torch.sin(math.pi * y) + 0.25 * torch.sin(4 * math.pi * x) * torch.sin(
        4 * math.pi * y)


class Poisson2D(Problem):
    """Laplacian(u) = f on [x0, x1] x [y0, y1], u = g on the boundary.

    Manufactured: an exact solution ``u(x, y)`` (a torch callable on tensors; default
    :func:`two_mode_solution`); f = Laplacian(u) is derived from it by autograd and
    g = u on the boundary. The image case (the SIREN experiment) is
    :class:`Poisson2DImage` (:meth:`from_image`).

    Loss terms (means over the batch):
        "pde":      (Laplacian(u) - f)^2 / mean(f^2)
        "boundary": (u - g)^2

    Hard constraint (``constraint="hard"``): the network N is
    trained behind u = g + d N (:meth:`hard_constraint`), with
    d = 16 (x - x0)(x1 - x)(y - y0)(y1 - y) / ((x1 - x0)^2 (y1 - y0)^2) and g the
    transfinite interpolation of the boundary values of u (built from them alone; 0 for
    the default solution, which vanishes on the boundary of [-1, 1]^2), so u = g on the
    boundary exactly and the "boundary" term and point set are gone.

    Args:
        u: exact solution u(x, y) -> tensor (torch ops only), or None for the default.
        bounds: ((x0, x1), (y0, y1)).
        sampler: interior sampler, "uniform", "sobol" or "lhs".
        boundary_fraction: boundary points per interior point.
        constraint: "soft" (the "boundary" loss term) or "hard" (train ``constrain(net)``).
    """

    name = "poisson2d"
    bad_params = ({"boundary_fraction": 0.0}, {"sampler": "grid"}, {"bounds": ((1.0, -1.0), (-1.0, 1.0))})
    check_resolution = 17
    input_names = ("x", "y")
    out_dim = 1
    # The reference is the fourth-order compact (9-point) FD solution: rel L2 error vs
    # the default exact solution 6.3e-8 at 257^2 and 3.9e-9 at 513^2, so 513^2 leaves a
    # 25x margin under a 1e-7 network (the autograd source on the grid costs more than
    # the solve; see compute_reference).
    default_resolution = 513
    # SIREN with first omega 4 (the top mode is 4 pi on [-1, 1]) and hidden omega 30
    # reached rel L2 4.6e-4 after 3000 Adam steps at lr 1e-3 (benchmarks/poisson_pinn.py).
    default_first_omega = 4.0
    offers_hard_constraint = True

    def __init__(self, u: Callable[[Tensor, Tensor], Tensor] | None = None, *,
                 bounds=((-1.0, 1.0), (-1.0, 1.0)), sampler: str = "sobol", boundary_fraction: float = 0.25,
                 constraint: str = "soft"):
        self.bounds = sampling.check_bounds(bounds)
        if len(self.bounds) != 2:
            raise ValueError(f"Poisson2D needs two (lo, hi) bounds, got {len(self.bounds)}.")
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.boundary_fraction = positive("boundary_fraction", boundary_fraction, "use e.g. boundary_fraction=0.25.")
        if u is not None:
            check_solution(u, "u", self.bounds)
        self.u_fn = two_mode_solution if u is None else u
        self.sampler = sampler
        self.derivatives = {"interior": DerivativeSpec.laplacian(("x", "y")), "boundary": DerivativeSpec()}
        self._set_constraint(constraint, ("boundary", "g"))
        self._f_scale()

    @classmethod
    def from_image(cls, image="camera", *, size: int = 128, supervise: str = "laplacian",
                   boundary_fraction: float = 0.25) -> "Poisson2DImage":
        """The SIREN image experiment, :class:`Poisson2DImage` (same arguments)."""
        return Poisson2DImage(image, size=size, supervise=supervise, boundary_fraction=boundary_fraction)

    # ----- data -------------------------------------------------------------------
    def exact(self, x: Tensor) -> Tensor:
        return self.u_fn(x[:, 0], x[:, 1]).reshape(-1, 1)

    def source(self, x: Tensor) -> Tensor:
        """f = Laplacian(u) at x (n, 2) -> (n, 1), from the exact solution
        (:func:`~pinn_sine.problems.base.exact_laplacian`)."""
        return exact_laplacian(self.u_fn, x)

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        return self._constrained(manufactured_box_batch(self, n, generator))

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """The normalised interior residual (Lap u - f) / sqrt(<f^2>) (n, 1)."""
        xi, ji = batch["interior"], jets["interior"]
        f = batch["f"].to(ji.u.dtype) if "f" in batch else self.source(xi.double()).to(ji.u.dtype)
        return (ji.laplacian(("x", "y")) - f) / math.sqrt(self._f_scale_value)

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u - g at the boundary points (n_b, 1)."""
        return jets["boundary"].u - manufactured_boundary_target(self, jets, batch)

    def terms(self) -> tuple[Term, ...]:
        """"pde" at the interior points and "boundary" u - g (not under the hard constraint)."""
        pde = Term("pde", ("interior",), "pde", self._interior_residual)
        if self.constraint == "hard":
            return (pde,)
        return pde, Term("boundary", ("boundary",), "boundary", self._boundary_residual)

    def _f_scale(self) -> float:
        """mean(f^2) over the domain (4096 fixed points), the PDE term's normaliser."""
        if not hasattr(self, "_f_scale_value"):
            g = torch.Generator().manual_seed(0)
            f = self.source(sampling.box(4096, self.bounds, g).double())
            self._f_scale_value = max(float((f**2).mean()), 1e-12)
        return self._f_scale_value

    def hard_constraint(self) -> HardConstraint:
        """u = g + d N: d the bubble over the rectangle, g the transfinite interpolation of
        u's boundary values (class docstring; ``manufactured_box_constraint``)."""
        pi = math.pi
        terms = (((1.0, ((0, SineFactor(pi)), (1, SineFactor(pi)))),
                  (0.25, ((0, SineFactor(4 * pi)), (1, SineFactor(4 * pi)))))
                 if self.u_fn is two_mode_solution else None)
        return manufactured_box_constraint(self, terms)

    # ----- reference ------------------------------------------------------------------
    def params(self) -> dict:
        return {"case": "manufactured", "u_fn": describe_callable(self.u_fn),
                "bounds": [list(b) for b in self.bounds], "constraint": self.constraint}

    def compute_reference(self, resolution: int) -> ReferenceField:
        from ..validation import fd

        # Order 4 (Mehrstellen): f is evaluated on the whole grid, boundary included.
        g = fd.on_grid(self.exact)
        sol = fd.poisson_2d(fd.on_grid(self.source), g, bounds=self.bounds, n=(resolution, resolution),
                            method="dst", order=4)
        exact = g(*np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij"))
        # (an identically zero u has no relative error: report the absolute one)
        error = float(np.linalg.norm(sol.fields["u"] - exact) / (np.linalg.norm(exact) or 1.0))
        return sol.to_reference(attrs={"error_estimate": error, "error_method": "exact"})


class Poisson2DImage(Problem):
    """Recover an image from its Laplacian or its gradient and its boundary values (the
    SIREN Poisson experiment, Sitzmann et al. 2020, Sec. 4.1): Laplacian(u) = f on
    [-1, 1]^2 with u = the image on the boundary, f the 5-point Laplacian of the image
    on its pixel nodes; or grad u = the central-difference gradient of the image.
    Points are drawn from the pixel grid, where the data live; the reference is the FD
    solution on that grid (no exact solution, no hard constraint).

    Loss terms (means over the batch):
        "pde":      (Laplacian(u) - f)^2 / mean(f^2)   -- normalised, since f ~ 1/h^2
        "gradient": |grad u - g_img|^2 / mean(|g_img|^2)   (instead, under gradient supervision)
        "boundary": (u - image)^2

    Args:
        image: a scikit-image name ("camera"), a path or a 2-D array (grey).
        size: the image is resized to size x size pixel nodes.
        supervise: "laplacian" or "gradient".
        boundary_fraction: boundary points per interior point (> 0).
    """

    name = "poisson2d"
    input_names = ("x", "y")
    out_dim = 1
    bounds = ((-1.0, 1.0), (-1.0, 1.0))
    bad_params = ({"supervise": "hessian"}, {"boundary_fraction": 0.0})
    default_first_omega = Poisson2D.default_first_omega

    def __init__(self, image="camera", *, size: int = 128, supervise: str = "laplacian",
                 boundary_fraction: float = 0.25):
        if supervise not in SUPERVISIONS:
            raise ValueError(f'Invalid supervise "{supervise}". Must be one of {list(SUPERVISIONS)}.')
        self.boundary_fraction = positive("boundary_fraction", boundary_fraction, "use e.g. boundary_fraction=0.25.")
        self.image_spec = image if isinstance(image, str) else "<array>"
        self.image = img = load_image(image, size=size, grey=True)
        self.supervise = supervise
        self.pointwise_term = "gradient" if supervise == "gradient" else "pde"
        h = 2.0 / (size - 1)
        # Data on the pixel nodes: the 5-point Laplacian and central-difference gradient.
        lap = np.zeros_like(img)
        lap[1:-1, 1:-1] = (img[2:, 1:-1] + img[:-2, 1:-1] + img[1:-1, 2:] + img[1:-1, :-2] - 4 * img[1:-1, 1:-1]) / h**2
        gx, gy = np.gradient(img, h, h)
        self._lap = torch.from_numpy(lap)
        self._grad = torch.from_numpy(np.stack([gx, gy], axis=-1))
        self._img = torch.from_numpy(img)
        interior = (DerivativeSpec(first=("x", "y")) if supervise == "gradient"
                    else DerivativeSpec.laplacian(("x", "y")))
        self.derivatives = {"interior": interior, "boundary": DerivativeSpec()}

    def _node_index(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n = self.image.shape[0]
        idx = torch.round((x + 1.0) * (n - 1) / 2.0).long().clamp(0, n - 1)
        return idx[:, 0], idx[:, 1]

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        n_b = max(1, int(round(self.boundary_fraction * n)))
        size = self.image.shape[0]
        nodes = torch.linspace(-1.0, 1.0, size)
        ij = torch.randint(1, size - 1, (n, 2), generator=generator)
        b = torch.randint(0, size, (n_b,), generator=generator)
        side = torch.randint(0, 4, (n_b,), generator=generator)
        edge = torch.where(side % 2 == 0, 0, size - 1)
        bi = torch.where(side < 2, edge, b)
        bj = torch.where(side < 2, b, edge)
        return {"interior": torch.stack([nodes[ij[:, 0]], nodes[ij[:, 1]]], dim=1),
                "boundary": torch.stack([nodes[bi], nodes[bj]], dim=1)}

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(Lap u - f) / sqrt(<f^2>) (n, 1), or (grad u - g_img) / sqrt(<|g_img|^2>) (n, 2)."""
        ji = jets["interior"]
        dtype = ji.u.dtype
        i, j = self._node_index(batch["interior"])
        if self.supervise == "laplacian":
            f = self._lap[i, j].to(dtype).reshape(-1, 1)
            return (ji.laplacian(("x", "y")) - f) / math.sqrt(float((self._lap**2).mean()))
        grad = torch.cat([ji.d("x"), ji.d("y")], dim=1)
        return (grad - self._grad[i, j].to(dtype)) / math.sqrt(float((self._grad**2).sum(-1).mean()))

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u - image at the boundary points (n_b, 1)."""
        jb = jets["boundary"]
        bi, bj = self._node_index(batch["boundary"])
        return jb.u - self._img[bi, bj].to(jb.u.dtype).reshape(-1, 1)

    def terms(self) -> tuple[Term, ...]:
        """"pde" (or "gradient", observed derivatives: kind "data") at the interior points
        and "boundary" u - image."""
        kind = "data" if self.supervise == "gradient" else "pde"
        return (Term(self.pointwise_term, ("interior",), kind, self._interior_residual),
                Term("boundary", ("boundary",), "boundary", self._boundary_residual))

    def hard_constraint(self) -> HardConstraint:
        raise ValueError("the image case has no hard constraint: its boundary data are pixel values, with no "
                         "smooth extension into the domain; use constraint='soft'.")

    def params(self) -> dict:
        return {"case": "image", "image": self.image_spec, "image_sha": image_digest(self.image),
                "size": int(self.image.shape[0]), "supervise": self.supervise}

    @property
    def default_reference_resolution(self) -> int:
        return self.image.shape[0]

    def compute_reference(self, resolution: int) -> ReferenceField:
        from ..validation import fd

        size = self.image.shape[0]
        if resolution != size:
            raise ValueError(f"the image case is defined on its {size} x {size} pixel grid; "
                             f"got resolution={resolution}. Use resolution={size}.")
        if self.supervise == "laplacian":
            f = self._lap.numpy()
        else:
            h = 2.0 / (size - 1)
            f = np.gradient(self._grad[..., 0].numpy(), h, axis=0) + np.gradient(self._grad[..., 1].numpy(), h, axis=1)
        sol = fd.poisson_2d(f, self.image, bounds=self.bounds, n=(size, size), method="dst")
        return sol.to_reference(attrs={"image": True, "data_range": 1.0})
