"""ReferenceField: a reference solution on a grid (an FD solve) or from data (a file,
arrays: a grid or scattered points), with what produced it."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def params_hash(problem: str, params: dict) -> str:
    """SHA-256 of the canonical JSON of (problem, params): the cache key of a reference."""
    blob = json.dumps({"problem": problem, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


#: How ``attrs["error_estimate"]`` was obtained: against an exact solution, by Richardson
#: extrapolation from two grids, or as the difference from a refined grid.
ERROR_METHODS = ("exact", "richardson", "refinement")
#: How the points of a field are laid out (``attrs["layout"]``): a tensor-product grid,
#: or scattered points (each coordinate array holds one column of the points).
LAYOUTS = ("grid", "scattered")
#: The file formats :meth:`ReferenceField.from_file` reads, by suffix.
DATA_FORMATS = {".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".csv": "csv"}
#: The ``solver`` of a reference read from data.
DATA_SOLVER = "data"


@dataclass(frozen=True)
class ReferenceField:
    """A reference solution sampled on a tensor-product grid, or at scattered points.

    Attributes:
        problem: the problem's name, e.g. "poisson2d".
        params: the JSON-serialisable parameters that determine the field.
        coords: ordered 1-D coordinates, e.g. {"x": (nx,), "y": (ny,)} or {"t", "x", "y"};
            the order is the network's input order. In the scattered layout
            (``attrs["layout"] == "scattered"``) every coordinate has length n: point i
            is (coords[a][i] for each a), so ``points()`` is their columns stacked.
        fields: ordered output fields; network output column k is field k. A field has
            the grid's shape (``grid_shape``; (n,) for scattered points), or that shape
            plus a trailing channel axis (RGB), in which case it takes that many
            consecutive columns.
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
            text}, for the file's metadata; units default to "1", non-dimensional);
            ``layout`` (one of :data:`LAYOUTS`, default "grid"); ``provenance`` (where
            a reference from data came from: see :meth:`from_arrays`, :meth:`from_file`).

    A reference from data (a peer's .npz, a measurement, a COMSOL export) is made by
    :meth:`from_file` or :meth:`from_arrays`; its ``solver`` is "data", its order 0,
    its spacing empty, and ``attrs["provenance"]`` records the file, its SHA-256 and
    the grid or points it holds.
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
        layout = self.attrs.get("layout", "grid")
        if layout not in LAYOUTS:
            raise ValueError(f"attrs['layout']={layout!r}: expected one of {list(LAYOUTS)}.")
        for name, c in self.coords.items():
            if np.ndim(c) != 1:
                raise ValueError(f"coordinate {name!r} must be 1-D, got shape {np.shape(c)}.")
        if layout == "scattered":
            lengths = {name: len(c) for name, c in self.coords.items()}
            if not lengths or len(set(lengths.values())) != 1 or 0 in lengths.values():
                raise ValueError(f"scattered points need coordinates of one length n >= 1 (column a of the (n, d) "
                                 f"points), got the lengths {lengths}.")
        shape = self.grid_shape
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
    def layout(self) -> str:
        """"grid" (a tensor-product grid over ``coords``) or "scattered" (n points)."""
        return self.attrs.get("layout", "grid")

    @property
    def scattered(self) -> bool:
        return self.layout == "scattered"

    @property
    def provenance(self) -> dict | None:
        """Where a reference from data came from (``attrs["provenance"]``), else None."""
        return self.attrs.get("provenance")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The shape of a field (without a channel axis): one length per coordinate, or
        (n,) for n scattered points."""
        if self.scattered:
            return (len(next(iter(self.coords.values()))),)
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
        """All grid points as (N, d) in C order of the grid (the network's input layout);
        the scattered points (n, d) in their order."""
        if self.scattered:
            return np.stack([np.asarray(c) for c in self.coords.values()], axis=1)
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

    # ----- references from data -----------------------------------------------------------
    @classmethod
    def from_arrays(cls, coords: Mapping[str, np.ndarray], fields: Mapping[str, np.ndarray], *,
                    layout: str = "grid", problem: str = "", params: dict | None = None,
                    mask: np.ndarray | None = None, attrs: dict | None = None,
                    source: str | None = None) -> ReferenceField:
        """A reference from arrays: a rectilinear grid or scattered points with values.

        Args:
            coords: {input name: 1-D array}, in the network's input order. Grid: each
                strictly increasing (any spacing). Scattered: each of length n, the
                columns of the (n, d) points (``dict(zip(("x", "y"), points.T))``).
            fields: {field name: array} of the grid's shape (scattered: (n,)), with an
                optional trailing channel axis; network output column k is field k.
            layout: "grid" or "scattered" (:data:`LAYOUTS`).
            problem, params: the problem's name and parameters (``Problem.reference``
                sets both).
            mask: optional boolean array of the field's shape: where errors are measured.
            attrs: extra facts (see the class docstring); ``layout`` and ``provenance``
                are set here.
            source: where the data come from, in words (a measurement, "COMSOL 6.1"),
                recorded in the provenance.

        ``attrs["provenance"]`` is ``{"source": "arrays", "sha256": <digest of the
        arrays>, "layout", "shape", "grid" | "points"}`` (:func:`arrays_digest`: names,
        dtypes, shapes and bytes of the coordinates, fields and mask). Raises ValueError
        naming the array and the fix for a non-increasing coordinate, a shape that does
        not match, non-finite values, a mask that is not boolean.
        """
        coords_a, fields_a, mask_a = _checked_arrays(coords, fields, layout, mask)
        digest = arrays_digest(coords_a, fields_a, mask_a)
        provenance = {"source": "arrays", "sha256": digest, **_describe(coords_a, layout)}
        return _data_field(coords_a, fields_a, layout, problem, params, mask_a, attrs, provenance, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, format: str | None = None,
                  coords: Sequence[str] | Mapping[str, str] | None = None,
                  fields: Sequence[str] | Mapping[str, str] | None = None, layout: str | None = None,
                  mask: str | None = None, problem: str = "", params: dict | None = None,
                  attrs: dict | None = None, source: str | None = None) -> ReferenceField:
        """A reference read from a data file, with the file's name, size and SHA-256.

        Formats (``format``, else from the suffix: :data:`DATA_FORMATS`):
            "npz": named arrays (``np.savez``); ``coords`` and ``fields`` name them.
            "h5": a pinn_sine reference file (it has a ``schema_version`` attribute: read
                and checked by :func:`~pinn_sine.validation.load_reference`; ``coords``
                and ``fields``, when given, must be its own), or any HDF5 file whose
                datasets ``coords`` and ``fields`` name ("group/x" paths allowed).
            "csv": a header row of column names, then one row per point (scattered);
                ``coords`` name the input columns, ``fields`` the value columns.

        Args:
            coords: the coordinate arrays (columns) in the network's input order: a list
                of names, or {input name: name in the file} to rename them.
            fields: the field arrays (columns), likewise.
            layout: "grid" (default for npz and h5) or "scattered" (default, and the only
                layout, for csv): see :meth:`from_arrays`.
            mask: the name of a boolean (or 0/1) array of the field's shape in the file.
            problem, params, attrs, source: as :meth:`from_arrays`.

        ``attrs["provenance"]`` is ``{"source": "file", "file": <name>, "path": <absolute
        path>, "bytes": <size>, "sha256": <digest of the file's bytes>, "format",
        "layout", "shape", "grid" (per coordinate [min, max, n]) | "points" (n and the
        bounding box)}`` (a pinn_sine file adds what it said it was: "stored_problem",
        "stored_params_hash", "stored_solver"). Raises FileNotFoundError for a missing
        file and ValueError for an unknown format, a name the file lacks (listing the
        ones it has), and every check of :meth:`from_arrays`.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"reference data file {path} does not exist (or is not a file).")
        fmt = _data_format(path, format)
        if fmt == "csv" and layout not in (None, "scattered"):
            raise ValueError(f"{path}: a .csv file is read as scattered points (one row per point), got "
                             f"layout={layout!r}; leave layout out, or save a grid as .npz.")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f'Invalid layout "{layout}". Must be one of {list(LAYOUTS)}.')
        layout = layout or ("scattered" if fmt == "csv" else "grid")
        raw = path.read_bytes()
        file_facts = {"source": "file", "file": path.name, "path": str(path.resolve()), "bytes": len(raw),
                      "sha256": hashlib.sha256(raw).hexdigest(), "format": fmt}
        if fmt == "h5":
            stored = _stored_reference(path, coords, fields, mask)
            if stored is not None:
                prov = {**file_facts, **_describe(stored.coords, stored.layout), "stored_problem": stored.problem,
                        "stored_params_hash": stored.hash, "stored_solver": stored.solver}
                if source is not None:
                    prov["description"] = str(source)
                merged = {**stored.attrs, **(attrs or {}), "provenance": prov}
                return ReferenceField(problem=problem, params=dict(params or {}), coords=stored.coords,
                                      fields=stored.fields, solver=stored.solver, order=stored.order,
                                      spacing=stored.spacing, mask=stored.mask, attrs=merged)
        coord_names, field_names = _names(coords, "coords", path), _names(fields, "fields", path)
        wanted = [*coord_names.values(), *field_names.values()] + ([mask] if mask is not None else [])
        arrays = {"npz": _read_npz, "h5": _read_h5, "csv": _read_csv}[fmt](path, wanted)
        coords_a = {name: arrays[key] for name, key in coord_names.items()}
        fields_a = {name: arrays[key] for name, key in field_names.items()}
        mask_a = None if mask is None else _as_mask(arrays[mask], mask)
        coords_a, fields_a, mask_a = _checked_arrays(coords_a, fields_a, layout, mask_a, where=f"{path}: ")
        prov = {**file_facts, **_describe(coords_a, layout)}
        return _data_field(coords_a, fields_a, layout, problem, params, mask_a, attrs, prov, source)


def arrays_digest(coords: Mapping[str, np.ndarray], fields: Mapping[str, np.ndarray],
                  mask: np.ndarray | None = None) -> str:
    """SHA-256 of each coordinate's, field's and the mask's name, dtype, shape and bytes,
    in order: the identity of a reference given as arrays."""
    h = hashlib.sha256()
    named = [*(("coord", n, a) for n, a in coords.items()), *(("field", n, a) for n, a in fields.items())]
    if mask is not None:
        named.append(("mask", "mask", np.asarray(mask, dtype=np.uint8)))
    for role, name, arr in named:
        arr = np.ascontiguousarray(arr)
        h.update(f"\0{role}\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _checked_arrays(coords, fields, layout: str, mask, *, where: str = ""):
    """float64 copies of ``coords`` and ``fields`` (and a boolean mask) with the checks of
    :meth:`ReferenceField.from_arrays`, each error naming the array and the fix."""
    if layout not in LAYOUTS:
        raise ValueError(f'{where}Invalid layout "{layout}". Must be one of {list(LAYOUTS)}.')
    if not isinstance(coords, Mapping) or not coords:
        raise ValueError(f"{where}coords must be a non-empty dict {{input name: 1-D array}}, got {coords!r:.80}.")
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError(f"{where}fields must be a non-empty dict {{field name: array}}, got {fields!r:.80}.")
    out_c = {}
    for name, c in coords.items():
        c = _float_array(c, f"coordinate {name!r}", where)
        if c.ndim != 1:
            raise ValueError(f"{where}coordinate {name!r} has shape {c.shape}; give one 1-D array per input "
                             "(scattered points: the columns of the (n, d) array, dict(zip(names, points.T))).")
        if layout == "grid":
            if len(c) < 2:
                raise ValueError(f"{where}coordinate {name!r} has {len(c)} node(s); a grid axis needs at least 2.")
            steps = np.diff(c)
            if not np.all(steps > 0):
                k = int(np.argmax(~(steps > 0)))
                raise ValueError(f"{where}coordinate {name!r} is not strictly increasing ("
                                 f"{name}[{k}]={float(c[k])!r}, {name}[{k + 1}]={float(c[k + 1])!r}); sort the axis "
                                 "and the fields with it "
                                 "(np.argsort), or give the points with layout='scattered'.")
        out_c[name] = c
    shape = (len(next(iter(out_c.values()))),) if layout == "scattered" else tuple(len(c) for c in out_c.values())
    if layout == "scattered" and len({len(c) for c in out_c.values()}) != 1:
        raise ValueError(f"{where}scattered points need coordinates of one length n, got "
                         f"{ {k: len(c) for k, c in out_c.items()} }; coordinate a of point i is coords[a][i].")
    out_f = {}
    for name, f in fields.items():
        f = _float_array(f, f"field {name!r}", where)
        if f.shape[:len(shape)] != shape or f.ndim > len(shape) + 1:
            hint = ("; scattered points are given with layout='scattered'" if layout == "grid" and f.ndim == 1
                    and len(out_c) > 1 else "")
            what = "the points" if layout == "scattered" else f"the grid {tuple(out_c)}"
            raise ValueError(f"{where}field {name!r} has shape {f.shape}; {what} need {shape} (a trailing channel "
                             f"axis is allowed){hint}.")
        bad = ~np.isfinite(f)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            fix = ("drop those rows" if layout == "scattered" else
                   "give the known values as scattered points (layout='scattered') without them")
            raise ValueError(f"{where}field {name!r} has {int(bad.sum())} non-finite values (nan or inf) of {f.size}, "
                             f"the first at index {first}; a reference must be finite: {fix}, or fill them.")
        out_f[name] = f
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"{where}mask has dtype {mask.dtype}; give a boolean array (True where errors are "
                             "measured), e.g. mask=values > 0.5 or mask.astype(bool).")
        if mask.shape != shape:
            raise ValueError(f"{where}mask has shape {mask.shape}, the fields {shape}.")
    return out_c, out_f, mask


def _float_array(a, what: str, where: str) -> np.ndarray:
    if np.iscomplexobj(a):
        raise ValueError(f"{where}{what} is complex; give its real and imaginary parts as two fields, "
                         "e.g. u_real and u_imag (evaluate reports the error of |u| too).")
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}{what} is not numeric ({err}); give an array of numbers.") from None
    if arr.ndim and what.startswith("coordinate") and not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}{what} has {int((~np.isfinite(arr)).sum())} non-finite values (nan or inf); "
                         "drop those points.")
    return arr


def _describe(coords: Mapping[str, np.ndarray], layout: str) -> dict:
    """The provenance's account of where the values are: per coordinate [min, max, n] of
    a grid, or the number of points and their bounding box."""
    if layout == "grid":
        grid = {k: [float(c[0]), float(c[-1]), int(len(c))] for k, c in coords.items()}
        return {"layout": "grid", "shape": [int(len(c)) for c in coords.values()], "grid": grid}
    n = int(len(next(iter(coords.values()))))
    return {"layout": "scattered", "shape": [n],
            "points": {"n": n, "bounds": {k: [float(np.min(c)), float(np.max(c))] for k, c in coords.items()}}}


def _data_field(coords, fields, layout, problem, params, mask, attrs, provenance, source) -> ReferenceField:
    attrs = dict(attrs or {})
    for key in ("layout", "provenance"):
        if key in attrs:
            raise ValueError(f"attrs[{key!r}] is set by from_arrays/from_file; leave it out (layout=... chooses "
                             "the layout).")
    if source is not None:
        provenance["description"] = str(source)
    attrs.update({"layout": layout, "provenance": provenance})
    return ReferenceField(problem=problem, params=dict(params or {}), coords=coords, fields=fields,
                          solver=DATA_SOLVER, order=0, spacing={}, mask=mask, attrs=attrs)


def _data_format(path: Path, format: str | None) -> str:
    formats = sorted(set(DATA_FORMATS.values()))
    if format is not None:
        if format not in formats:
            raise ValueError(f'Invalid format "{format}". Must be one of {formats}.')
        return format
    fmt = DATA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown data format {path.suffix!r}; the suffixes read are "
                         f"{sorted(DATA_FORMATS)}; pass format= (one of {formats}) for another name.")
    return fmt


def _names(spec, what: str, path: Path) -> dict[str, str]:
    """{name in the reference: name in the file} from a list of names or a mapping."""
    if spec is None:
        raise ValueError(f"{path}: name the {what} to read, e.g. {what}=['x', 'y'] "
                         f"(or {{'x': 'X_column'}} to rename).")
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        out = {str(k): str(v) for k, v in spec.items()}
    else:
        out = {str(n): str(n) for n in spec}
    if not out:
        raise ValueError(f"{path}: {what} names no array.")
    return out


def _missing(path: Path, wanted: list[str], have: list[str]) -> None:
    missing = [n for n in wanted if n not in have]
    if missing:
        raise ValueError(f"{path}: no array named {', '.join(repr(n) for n in missing)}; the file has "
                         f"{have}. Name those (coords=[...], fields=[...]).")


def _read_npz(path: Path, wanted: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            _missing(path, wanted, sorted(data.files))
            return {n: data[n] for n in wanted}
    except (OSError, EOFError, ValueError) as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot be read as .npz ({err}); write it with np.savez(path, x=..., u=...).") \
            from None


def _read_h5(path: Path, wanted: list[str]) -> dict[str, np.ndarray]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be opened as HDF5 ({err}).") from None
    with f:
        have = []
        f.visititems(lambda name, obj: have.append(name) if isinstance(obj, h5py.Dataset) else None)
        _missing(path, wanted, sorted(have))
        return {n: f[n][()] for n in wanted}


def _read_csv(path: Path, wanted: list[str]) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    if not header:
        raise ValueError(f"{path}: empty .csv; expected a header row of column names, then one row per point.")
    _missing(path, wanted, header)
    columns = {n: header.index(n) for n in wanted}
    out = {n: np.empty(len(rows)) for n in wanted}
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {i + 2} has {len(row)} values, the header {len(header)} columns.")
        for n, k in columns.items():
            try:
                out[n][i] = float(row[k])
            except ValueError:
                raise ValueError(f"{path}: line {i + 2}, column {n!r}: {row[k]!r} is not a number.") from None
    if not rows:
        raise ValueError(f"{path}: the .csv has a header but no rows of data.")
    return out


def _as_mask(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == np.bool_:
        return values
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"mask array {name!r} holds values other than 0 and 1 (or True/False); give a boolean "
                         "mask, True where errors are measured.")
    return values.astype(bool)


def _stored_reference(path: Path, coords, fields, mask) -> ReferenceField | None:
    """The pinn_sine reference in the HDF5 file ``path`` (checked by load_reference), or
    None when the file is not one (no ``schema_version`` attribute)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            ours = "schema_version" in f.attrs
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be opened as HDF5 ({err}).") from None
    if not ours:
        return None
    from .store import load_reference

    ref = load_reference(path)
    for spec, what, have in ((coords, "coords", list(ref.coords)), (fields, "fields", list(ref.fields))):
        if spec is not None and list(_names(spec, what, path).items()) != [(n, n) for n in have]:
            raise ValueError(f"{path} is a pinn_sine reference file with the {what} {have}; leave {what} out (the "
                             f"file's own are used), or give exactly those.")
    if mask is not None:
        raise ValueError(f"{path} is a pinn_sine reference file; its own mask is used: leave mask out.")
    return ref
