"""HDF5 storage of reference fields: atomic writes, defensive reads, a hash-keyed cache.

File layout (schema 2):
    /<coord>   1-D coordinate datasets, made HDF5 dimension scales (xarray opens them);
               attributes long_name, units, description
    /<field>   the field(s), dims attached to the coordinate scales; long_name, units,
               description (which network output columns it is)
    /mask      optional uint8 evaluation region (1 = inside); long_name, description
               (what the region is), flag_values, flag_meanings
    /point     scattered layout only (``attrs_json`` has ``"layout": "scattered"``): the
               point index 0..n-1, the one dimension scale; the coordinates are 1-D
               datasets of length n along it (xarray: coordinates x(point), y(point)),
               and each field's ``coordinates`` attribute names them (CF)
    attrs: schema_version, kind ("reference" or "prediction"), description, problem,
           params_json, params_hash, solver, solver_version, order, spacing_json,
           attrs_json, extra_attrs (the names of the caller's extra attributes, which
           are stored beside these), coords, fields, data_sha256, package_version

``data_sha256`` covers the data and every attribute that gives it its meaning (all of
the above but itself and ``package_version``, which is informational): an edited order,
solver, spacing or ``attrs_json`` is caught on loading like edited data.

``solver_version`` comes from :data:`pinn_sine.validation.fd.versions.SOLVER_VERSIONS`;
the cache recomputes a file written by another version of its solver.

A reference from data (``ReferenceField.from_file``/``from_arrays``) keeps its
provenance (file name, size, SHA-256, layout, grid or points) in ``attrs_json``, which
the digest covers.
"""
from __future__ import annotations

import contextvars
import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .._io import WriteError, write_bytes
from .fd.versions import solver_version, table_digest
from .reference import ReferenceField, params_hash

SCHEMA_VERSION = 2
#: What a file holds: a reference solution, or a network's prediction on a reference grid.
KINDS = ("reference", "prediction")
DEFAULT_MASK_MEANING = "region where errors are measured"
#: the dimension scale of a scattered reference (the point index)
POINT_DIM = "point"

_RESERVED = frozenset({"schema_version", "kind", "description", "problem", "params_json", "params_hash", "solver",
                       "solver_version", "order", "spacing_json", "attrs_json", "extra_attrs", "coords", "fields",
                       "data_sha256", "package_version"})
_COORD_NAMES = {"x": "space coordinate x", "y": "space coordinate y", "z": "space coordinate z", "t": "time"}


class ReferenceFileError(ValueError):
    """A reference file that cannot be trusted (schema, hash, shapes, data or metadata)."""


@dataclass(frozen=True)
class FileMetadata:
    """What a stored file says about itself beyond the :class:`ReferenceField`.

    Attributes:
        kind: "reference" or "prediction".
        description: free text written by :func:`save_reference`.
        solver_version: the version of ``ref.solver`` that wrote the field (0: unlisted).
        package_version: the pinn_sine version that wrote the file (informational).
        extra: the caller's extra attributes (``save_reference(..., extra_attrs=)``).
    """

    kind: str
    description: str
    solver_version: int
    package_version: str
    extra: dict


@dataclass(frozen=True)
class ReferenceInfo:
    """Where :func:`cached_reference` got a reference from.

    Attributes:
        source: "cache" (a valid cached file was loaded) or "computed".
        seconds: wall time of the load, or of the computation and the write.
        path: the cache file (None when the reference did not go through the cache).
        stored: whether a computed reference was written to the cache.
        reason: why it was computed ("not in the cache", "caching is off", "stale: ...",
            "invalid cached file: ..."); None when it came from the cache.
    """

    source: str
    seconds: float
    path: Path | None
    stored: bool = False
    reason: str | None = None


def cache_dir() -> Path:
    """``$PINN_SINE_CACHE``, else ``$XDG_CACHE_HOME/pinn_sine``, else ``~/.cache/pinn_sine``."""
    env = os.environ.get("PINN_SINE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pinn_sine"


# ----- metadata ---------------------------------------------------------------------------
def _json_default(obj):
    """NumPy scalars and arrays as Python values; anything else is not JSON (TypeError)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON serialisable; store a number, string, list or dict.")


def _digest(meta: dict, arrays: list[tuple[str, np.ndarray]]) -> str:
    """SHA-256 of the canonical JSON of ``meta`` and of each array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name, arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _arrays(ref: ReferenceField) -> list[tuple[str, np.ndarray]]:
    out = [(n, np.asarray(c)) for n, c in ref.coords.items()] + [(n, np.asarray(v)) for n, v in ref.fields.items()]
    if ref.mask is not None:
        out.append(("mask", ref.mask.astype(np.uint8)))
    return out


def _field_long_name(name: str) -> str:
    for part, word in (("_real", "real"), ("_imag", "imaginary")):
        if name.endswith(part):
            stem = name[: -len(part)]
            return f"{word} part of the solution {stem}" if stem == "u" else f"{word} part of {stem}"
    return "solution u" if name == "u" else name


def _dataset_attrs(ref: ReferenceField, kind: str) -> dict[str, dict]:
    """long_name / units / description of every coordinate and field dataset."""
    units = ref.attrs.get("units") or {}
    long_names = ref.attrs.get("long_names") or {}
    out = {}
    where = "coordinate of the scattered points" if ref.scattered else "grid coordinate"
    for k, name in enumerate(ref.coords):
        out[name] = {"long_name": long_names.get(name, _COORD_NAMES.get(name, name)),
                     "units": units.get(name, "1"),
                     "description": f"{where}; input column {k} of the network"}
    for name, cols in ref.columns().items():
        long_name = long_names.get(name, _field_long_name(name))
        columns = f"column {cols.start}" if cols.stop - cols.start == 1 else f"columns {cols.start}..{cols.stop - 1}"
        what = "network prediction" if kind == "prediction" else f"{ref.solver} reference"
        out[name] = {"long_name": f"predicted {long_name}" if kind == "prediction" else long_name,
                     "units": units.get(name, "1"),
                     "description": f"{what}; network output {columns}"}
    return out


def _default_description(ref: ReferenceField, kind: str) -> str:
    if ref.scattered:
        where = f"at {ref.grid_shape[0]} scattered points ({', '.join(ref.coords)})"
    else:
        where = f"on a {' x '.join(str(n) for n in ref.grid_shape)} grid ({', '.join(ref.coords)})"
    if kind == "prediction":
        return f"network prediction ({ref.solver}) for {ref.problem} {where}"
    prov = ref.provenance or {}
    if ref.solver == "data" and prov.get("source") == "file":
        text = f"reference of {ref.problem} from the data file {prov.get('file')} (sha256 " \
               f"{str(prov.get('sha256'))[:12]}) {where}"
    elif ref.solver == "data":
        text = f"reference of {ref.problem} from arrays (sha256 {str(prov.get('sha256'))[:12]}) {where}"
    else:
        text = f"{ref.solver} (order {ref.order}) reference solution of {ref.problem} {where}"
    if ref.error_estimate is not None:
        text += f"; estimated relative L2 error {ref.error_estimate:.2e} ({ref.error_method or 'method unknown'})"
    return text


def _check_extra(extra: dict | None) -> dict:
    extra = dict(extra or {})
    for name, value in extra.items():
        if not isinstance(name, str) or not name or name in _RESERVED:
            raise ValueError(f"extra attribute name {name!r} is empty or reserved; reserved names are "
                             f"{sorted(_RESERVED)}. Choose another name.")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"extra attribute {name!r} is a {type(value).__name__}; expected str, int, float or "
                            "bool. Store structured values as json.dumps(value) under a name ending in _json.")
        extra[name] = value
    return extra


def save_reference(ref: ReferenceField, path: str | os.PathLike, *, kind: str = "reference",
                   description: str | None = None, extra_attrs: dict | None = None) -> Path:
    """Write ``ref`` to ``path`` atomically (:func:`pinn_sine._io.write_bytes`).

    Args:
        kind: "reference" (a solver's field) or "prediction" (a network's output on a
            reference grid: ``ref.solver`` names the network, ``ref.params`` what was
            trained, not the reference's parameters).
        description: free text stored as the ``description`` attribute (default: what,
            which solver, which grid and the error estimate).
        extra_attrs: further file attributes {name: str | int | float | bool}, e.g. a
            training summary as ``{"training_json": json.dumps(...)}``; covered by the
            digest and returned by :func:`read_metadata`.

    The file gets the permissions of the user's umask (a shared cache stays readable).
    The HDF5 file is built in memory and written with plain file I/O, so a full disk is
    an ``OSError`` (:class:`pinn_sine._io.WriteError`, "cannot write PATH: No space left
    on device") with ``path`` as it was and no temp file, never an HDF5 error mid-file.
    """
    from .. import __version__

    if kind not in KINDS:
        raise ValueError(f'Invalid kind "{kind}". Must be one of {list(KINDS)}.')
    extra = _check_extra(extra_attrs)
    description = _default_description(ref, kind) if description is None else str(description)
    strings = {"params_json": json.dumps(ref.params, sort_keys=True, default=str),
               "spacing_json": json.dumps(ref.spacing, sort_keys=True, default=_json_default),
               "attrs_json": json.dumps(ref.attrs, sort_keys=True, default=_json_default),
               "coords": json.dumps(list(ref.coords)), "fields": json.dumps(list(ref.fields)),
               "extra_attrs": json.dumps(sorted(extra))}
    meta = _meta(SCHEMA_VERSION, kind, description, ref.problem, strings, ref.solver, solver_version(ref.solver),
                 int(ref.order), extra)

    if ref.scattered and POINT_DIM in (*ref.coords, *ref.fields):
        raise ValueError(f"a scattered reference stores its point index as {POINT_DIM!r}; rename the coordinate or "
                         f"field {POINT_DIM!r}.")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        described = _dataset_attrs(ref, kind)
        scales = []
        if ref.scattered:  # one dimension, the point index; the coordinates lie along it
            point = f.create_dataset(POINT_DIM, data=np.arange(ref.grid_shape[0], dtype=np.int64))
            point.make_scale(POINT_DIM)
            point.attrs.update({"long_name": "index of the scattered point", "units": "1"})
            scales.append(point)
        for name, c in ref.coords.items():
            ds = f.create_dataset(name, data=np.asarray(c))
            if ref.scattered:
                ds.dims[0].attach_scale(point)
            else:
                ds.make_scale(name)
                scales.append(ds)
            ds.attrs.update(described[name])
        grid_datasets = []
        for name, data in ref.fields.items():
            ds = f.create_dataset(name, data=np.asarray(data), compression="gzip", shuffle=True)
            ds.attrs.update(described[name])
            if ref.scattered:
                ds.attrs["coordinates"] = " ".join(ref.coords)
            grid_datasets.append(ds)
        if ref.mask is not None:
            ds = f.create_dataset("mask", data=ref.mask.astype(np.uint8))
            ds.attrs.update({"long_name": "evaluation mask",
                             "description": str(ref.attrs.get("mask_meaning", DEFAULT_MASK_MEANING)),
                             "flag_values": np.array([0, 1], dtype=np.uint8),
                             "flag_meanings": "outside inside"})
            grid_datasets.append(ds)
        for ds in grid_datasets:
            for k, scale in enumerate(scales):
                ds.dims[k].attach_scale(scale)
        f.attrs.update({
            "schema_version": SCHEMA_VERSION, "kind": kind, "description": description,
            "problem": ref.problem, "params_hash": ref.hash, "solver": ref.solver,
            "solver_version": solver_version(ref.solver), "order": int(ref.order), **strings,
            "data_sha256": _digest(meta, _arrays(ref)), "package_version": __version__,
        })
        f.attrs.update(extra)

    with buffer.getbuffer() as data:  # the file's bytes, without a copy
        return write_bytes(path, data)


def _meta(schema: int, kind: str, description: str, problem: str, strings: dict, solver: str, version: int,
          order: int, extra: dict) -> dict:
    """The metadata the digest covers, as parsed values (the same on saving and loading)."""
    return {"schema_version": schema, "kind": kind, "description": description, "problem": problem,
            "params": json.loads(strings["params_json"]), "solver": solver, "solver_version": version,
            "order": order, "spacing": json.loads(strings["spacing_json"]),
            "attrs": json.loads(strings["attrs_json"]), "coords": json.loads(strings["coords"]),
            "fields": json.loads(strings["fields"]), "extra": extra}


# ----- reading ----------------------------------------------------------------------------
def _attr(f: h5py.File, name: str, path: Path):
    try:
        value = f.attrs[name]
    except KeyError:
        raise ReferenceFileError(f"{path}: no {name!r} attribute; not a pinn_sine reference file (or a damaged "
                                 "one). Recompute the reference.") from None
    except (OSError, TypeError) as err:  # a damaged attribute, or a type h5py cannot read
        raise ReferenceFileError(f"{path}: attribute {name!r} cannot be read ({err}); recompute the "
                                 "reference.") from err
    if isinstance(value, np.ndarray):
        raise ReferenceFileError(
            f"{path}: attribute {name!r} is an array of shape {value.shape}, expected a scalar; the file was "
            "rewritten by another tool (xarray's to_netcdf stores attributes as 1-element arrays). Recompute the "
            "reference, or write it with save_reference.")
    return value.decode() if isinstance(value, bytes) else value


def _int_attr(f, name: str, path: Path) -> int:
    value = _attr(f, name, path)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ReferenceFileError(f"{path}: attribute {name!r} is {value!r} ({type(value).__name__}), expected an "
                                 "integer; the file was edited or not written by pinn_sine. Recompute the reference.")
    return int(value)


def _str_attr(f, name: str, path: Path) -> str:
    value = _attr(f, name, path)
    if not isinstance(value, str):
        raise ReferenceFileError(f"{path}: attribute {name!r} is {value!r} ({type(value).__name__}), expected a "
                                 "string; the file was edited or not written by pinn_sine. Recompute the reference.")
    return value


def _json_attr(f, name: str, path: Path):
    text = _str_attr(f, name, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReferenceFileError(f"{path}: attribute {name!r} is not valid JSON ({err}); the file was edited or "
                                 "damaged. Recompute the reference.") from None


def _load(path: str | os.PathLike, expect_hash: str | None) -> tuple[ReferenceField, FileMetadata]:
    path = Path(path)
    if path.is_dir():
        raise ReferenceFileError(f"{path}: is a directory, expected a reference file; remove or rename it.")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ReferenceFileError(f"{path}: cannot be opened as HDF5 ({err}); delete it to recompute.") from err
    with f:
        version = _int_attr(f, "schema_version", path)
        if version != SCHEMA_VERSION:
            older = " (written by an older pinn_sine)" if version < SCHEMA_VERSION else ""
            raise ReferenceFileError(f"{path}: schema version {version}{older}, this package reads "
                                     f"{SCHEMA_VERSION}; recompute the reference (the cache does so by itself).")
        kind = _str_attr(f, "kind", path)
        if kind not in KINDS:
            raise ReferenceFileError(f"{path}: kind {kind!r}, expected one of {list(KINDS)}; the file was edited.")
        description = _str_attr(f, "description", path)
        problem = _str_attr(f, "problem", path)
        stored_hash = _str_attr(f, "params_hash", path)
        solver = _str_attr(f, "solver", path)
        version_of_solver = _int_attr(f, "solver_version", path)
        order = _int_attr(f, "order", path)
        strings = {n: _str_attr(f, n, path) for n in ("params_json", "spacing_json", "attrs_json", "coords",
                                                       "fields", "extra_attrs")}
        names = _json_attr(f, "extra_attrs", path)
        if not isinstance(names, list) or not all(isinstance(n, str) and n not in _RESERVED for n in names):
            raise ReferenceFileError(f"{path}: attribute 'extra_attrs' is {names!r}, expected a list of the extra "
                                     "attribute names; the file was edited. Recompute the reference.")
        extra = {n: _attr(f, n, path) for n in names}
        extra = {n: v.item() if isinstance(v, np.generic) else v for n, v in extra.items()}
        digest = _str_attr(f, "data_sha256", path)
        package_version = str(f.attrs.get("package_version", "unknown"))
        try:
            meta = _meta(version, kind, description, problem, strings, solver, version_of_solver, order, extra)
            coords = {n: f[n][()] for n in meta["coords"]}
            fields = {n: f[n][()] for n in meta["fields"]}
            stored_mask = f["mask"][()] if "mask" in f else None
            mask = None if stored_mask is None else stored_mask.astype(bool)
            ref = ReferenceField(problem=problem, params=meta["params"], coords=coords, fields=fields,
                                 solver=solver, order=order, spacing=meta["spacing"], mask=mask,
                                 attrs=meta["attrs"])
        except (KeyError, OSError, ValueError, TypeError, AttributeError) as err:
            raise ReferenceFileError(f"{path}: missing or unreadable content ({err}); recompute the "
                                     "reference.") from err
    actual = params_hash(problem, ref.params)
    if actual != stored_hash:
        raise ReferenceFileError(f"{path}: the stored parameters hash to {actual[:12]}, the file says "
                                 f"{stored_hash[:12]}; the file was edited or corrupted.")
    if expect_hash is not None and stored_hash != expect_hash:
        raise ReferenceFileError(f"{path}: parameters hash {stored_hash[:12]} does not match the requested "
                                 f"{expect_hash[:12]}; it belongs to other parameters.")
    arrays = _arrays(ref)
    if stored_mask is not None:  # digest the stored bytes: a 2 written over a 1 is an edit too
        arrays[-1] = ("mask", stored_mask)
    if _digest(meta, arrays) != digest:
        raise ReferenceFileError(f"{path}: digest mismatch: the data or the metadata that gives it its meaning "
                                 "(order, solver, spacing, attrs, ...) was truncated or modified; recompute it.")
    return ref, FileMetadata(kind=kind, description=description, solver_version=version_of_solver,
                             package_version=package_version, extra=extra)


def load_reference(path: str | os.PathLike, *, expect_hash: str | None = None) -> ReferenceField:
    """Read a reference (or prediction) file and check it: schema version, that the
    stored parameters hash to the stored hash (and to ``expect_hash`` when given), shapes,
    and a digest of the data and of the metadata that gives it its meaning. Raises
    :class:`ReferenceFileError` naming what is wrong. :func:`read_metadata` tells a
    prediction from a reference.
    """
    return _load(path, expect_hash)[0]


def read_metadata(path: str | os.PathLike) -> FileMetadata:
    """The checked :class:`FileMetadata` of a file (kind, description, solver version, extras)."""
    return _load(path, None)[1]


# ----- the cache --------------------------------------------------------------------------
_INFO_SINK: contextvars.ContextVar[list | None] = contextvars.ContextVar("pinn_sine_reference_info", default=None)


def cached_reference(problem: str, params: dict, compute: Callable[[], ReferenceField], *,
                     cache: bool = True) -> ReferenceField:
    """Return the cached reference for (problem, params), computing and storing it if absent.

    A cached file is recomputed, never used, when it fails :func:`load_reference`
    (reported with a "discarding cached reference" warning) or when it was written by
    another version of its solver (a "stale" warning). When the cache cannot be written
    (read-only folder, ``PINN_SINE_CACHE`` naming a file, a directory in the way) the
    computed reference is returned with a warning. At most one warning per call.
    :func:`reference_with_info` tells the caller where the field came from.
    """
    start = time.perf_counter()
    key = params_hash(problem, params)
    path = cache_dir() / f"{problem}-{key[:16]}-{table_digest()}.h5"
    notes, reason = [], "caching is off" if not cache else "not in the cache"
    try:
        present = cache and path.exists()
    except OSError as err:  # a cache folder we may not look into
        present = False
        notes.append(f"cannot read the reference cache at {path} ({type(err).__name__}: {err}).")
    if present:
        try:
            ref, meta = _load(path, expect_hash=key)
        except ReferenceFileError as err:
            notes.append(f"discarding cached reference: {err}")
            reason = f"invalid cached file: {err}"
        else:
            current = solver_version(ref.solver)
            if meta.kind != "reference":
                notes.append(f"discarding cached reference: {path} holds a {meta.kind}, not a reference.")
                reason = f"invalid cached file: a {meta.kind}"
            elif meta.solver_version != current:
                why = (f"written by solver {ref.solver!r} version {meta.solver_version}, the current version "
                       f"is {current}")
                notes.append(f"stale cached reference {path}: {why}; recomputing it.")
                reason = f"stale: {why}"
            else:
                _record(ReferenceInfo("cache", time.perf_counter() - start, path))
                return ref
    ref = compute()
    if ref.hash != key:
        raise RuntimeError(f"reference computed for {problem} carries parameters that hash to {ref.hash[:12]}, "
                           f"expected {key[:12]}")
    stored = False
    if cache:
        try:
            save_reference(ref, path)
            stored = True
        except OSError as err:  # WriteError: a full disk, a read-only folder, a file in the way
            cause = err.__cause__ if isinstance(err, WriteError) and isinstance(err.__cause__, OSError) else err
            notes.append(f"cannot write the reference cache at {path} ({type(cause).__name__}: {err}); using the "
                         "computed reference without caching it. Point PINN_SINE_CACHE at a writable folder, "
                         "or pass cache=False.")
    if notes:
        warnings.warn(" ".join(notes), RuntimeWarning, stacklevel=2)
    _record(ReferenceInfo("computed", time.perf_counter() - start, path if cache else None, stored, reason))
    return ref


def uncached_reference(compute: Callable[[], ReferenceField], reason: str) -> ReferenceField:
    """``compute()`` without the cache, reported to :func:`reference_with_info` as computed
    for ``reason``: a reference read from data (``Problem.reference_from_data``), whose
    file is its own store and whose key (its digest) is known only once it is read."""
    start = time.perf_counter()
    ref = compute()
    _record(ReferenceInfo("computed", time.perf_counter() - start, None, False, reason))
    return ref


def _record(info: ReferenceInfo) -> None:
    sink = _INFO_SINK.get()
    if sink is not None:
        sink.append(info)


def reference_with_info(problem, resolution: int | None = None, *,
                        cache: bool = True) -> tuple[ReferenceField, ReferenceInfo]:
    """``problem.reference(resolution, cache=cache)`` and a :class:`ReferenceInfo` saying
    whether it came from the cache or was computed, and how long that took.

    ``problem`` is a :class:`~pinn_sine.problems.Problem`; any override of its
    ``reference()`` that goes through :func:`cached_reference` is reported (the last
    cached reference it asked for); one that does not is reported as computed.
    """
    sink: list[ReferenceInfo] = []
    token = _INFO_SINK.set(sink)
    start = time.perf_counter()
    try:
        ref = problem.reference(resolution, cache=cache)
    finally:
        _INFO_SINK.reset(token)
    if sink:
        return ref, sink[-1]
    return ref, ReferenceInfo("computed", time.perf_counter() - start, None, False,
                              "the problem's reference() does not use the cache")
