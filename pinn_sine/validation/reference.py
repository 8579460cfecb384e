"""ReferenceField: a finite-difference solution on a grid, with what produced it."""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field

import numpy as np


def params_hash(problem: str, params: dict) -> str:
    """SHA-256 of the canonical JSON of (problem, params): the cache key of a reference."""
    blob = json.dumps({"problem": problem, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


#: How ``attrs["error_estimate"]`` was obtained: against an exact solution, by Richardson
#: extrapolation from two grids, or as the difference from a refined grid.
ERROR_METHODS = ("exact", "richardson", "refinement")


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
        attrs: extra JSON-serialisable facts. Keys with a meaning:
            ``image`` (True asks ``evaluate`` for PSNR/SSIM) and ``data_range``;
            ``error_estimate`` (float >= 0: the estimated relative L2 error of the
            field itself, over the mask) and ``error_method`` (one of
            :data:`ERROR_METHODS`); ``mask_meaning`` (what the mask marks, written into
            the HDF5 file); ``units`` and ``long_names`` ({coordinate or field name:
            text}, for the file's metadata; units default to "1", non-dimensional).
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
            bad = int(np.size(f) - np.count_nonzero(np.isfinite(f)))
            if bad:
                raise ValueError(f"field {name!r} has {bad} non-finite values (nan or inf) of {np.size(f)}; a "
                                 "reference must be finite everywhere (recompute it, or mask what is unknown).")
        for name, c in self.coords.items():
            if not np.all(np.isfinite(c)):
                raise ValueError(f"coordinate {name!r} has non-finite values.")
        if self.mask is not None and self.mask.shape != shape:
            raise ValueError(f"mask has shape {self.mask.shape}, expected the grid shape {shape}.")
        estimate = self.attrs.get("error_estimate")
        if estimate is not None:
            if isinstance(estimate, bool) or not isinstance(estimate, numbers.Real) \
                    or not math.isfinite(estimate) or estimate < 0:
                raise ValueError(f"attrs['error_estimate']={estimate!r}: expected a finite relative L2 error "
                                 ">= 0 (a float), or no such key when the error is unknown.")
        method = self.attrs.get("error_method")
        if method is not None and method not in ERROR_METHODS:
            raise ValueError(f"attrs['error_method']={method!r}: expected one of {list(ERROR_METHODS)}.")
        for key in ("units", "long_names"):
            table = self.attrs.get(key)
            if table is not None and (not isinstance(table, dict) or not all(isinstance(v, str)
                                                                             for v in table.values())):
                raise ValueError(f"attrs[{key!r}]={table!r}: expected a dict of coordinate or field name -> "
                                 "text, e.g. {'x': 'm'}.")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords.values())

    @property
    def error_estimate(self) -> float | None:
        """The estimated relative L2 error of this field (``attrs["error_estimate"]``),
        None when unknown; :attr:`error_method` says how it was estimated."""
        estimate = self.attrs.get("error_estimate")
        return None if estimate is None else float(estimate)

    @property
    def error_method(self) -> str | None:
        """How :attr:`error_estimate` was obtained (one of :data:`ERROR_METHODS`), or None."""
        return self.attrs.get("error_method")

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
