"""ReferenceField: a finite-difference solution on a grid, with what produced it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np


def params_hash(problem: str, params: dict) -> str:
    """SHA-256 of the canonical JSON of (problem, params): the cache key of a reference."""
    blob = json.dumps({"problem": problem, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class ReferenceField:
    """A reference solution sampled on a tensor-product grid.

    Attributes:
        problem: the problem's name, e.g. "poisson2d".
        params: the JSON-serialisable parameters that determine the field.
        coords: ordered 1-D coordinates, e.g. {"x": (nx,), "y": (ny,)} or {"t", "x", "y"};
            the order is the network's input order.
        fields: ordered output fields; network output column k is field k. A field has
            the grid's shape, or the grid's shape plus a trailing channel axis (RGB), in
            which case it takes that many consecutive columns.
        solver: the solver's name; order: its formal order of accuracy.
        spacing: grid spacing per coordinate used by the solver.
        mask: optional boolean array of the grid's shape: the region the errors are
            measured over (the physical region inside a PML, the missing pixels, ...).
        attrs: extra JSON-serialisable facts (``{"image": True}`` asks for PSNR/SSIM).
    """

    problem: str
    params: dict
    coords: dict[str, np.ndarray]
    fields: dict[str, np.ndarray]
    solver: str
    order: int
    spacing: dict[str, float]
    mask: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        shape = self.grid_shape
        for name, c in self.coords.items():
            if np.ndim(c) != 1:
                raise ValueError(f"coordinate {name!r} must be 1-D, got shape {np.shape(c)}.")
        if not self.fields:
            raise ValueError("a ReferenceField needs at least one field.")
        for name, f in self.fields.items():
            if f.shape[: len(shape)] != shape or f.ndim > len(shape) + 1:
                raise ValueError(f"field {name!r} has shape {f.shape}; the grid {tuple(self.coords)} "
                                 f"has shape {shape} (a trailing channel axis is allowed).")
        if self.mask is not None and self.mask.shape != shape:
            raise ValueError(f"mask has shape {self.mask.shape}, expected the grid shape {shape}.")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.coords)

    @property
    def hash(self) -> str:
        return params_hash(self.problem, self.params)

    def points(self) -> np.ndarray:
        """All grid points as (N, d) in C order of the grid (the network's input layout)."""
        mesh = np.meshgrid(*self.coords.values(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def columns(self) -> dict[str, slice]:
        """Which network output columns belong to which field."""
        out, k = {}, 0
        n_grid = len(self.grid_shape)
        for name, f in self.fields.items():
            width = 1 if f.ndim == n_grid else f.shape[-1]
            out[name] = slice(k, k + width)
            k += width
        return out

    @property
    def out_dim(self) -> int:
        return max(s.stop for s in self.columns().values())
