"""HDF5 storage of reference fields: atomic writes, defensive reads, a hash-keyed cache.

File layout (schema 1):
    /<coord>        1-D coordinate datasets, made HDF5 dimension scales (xarray opens them)
    /<field>        the field(s), dims attached to the coordinate scales
    /mask           optional uint8 evaluation region
    attrs: schema_version, problem, params_json, params_hash, solver, order, spacing_json,
           attrs_json, coords, fields, data_sha256, package_version
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .reference import ReferenceField, params_hash

SCHEMA_VERSION = 1


class ReferenceFileError(ValueError):
    """A reference file that cannot be trusted (schema, hash, shapes or data)."""


def cache_dir() -> Path:
    """``$PINN_SINE_CACHE``, else ``$XDG_CACHE_HOME/pinn_sine``, else ``~/.cache/pinn_sine``."""
    env = os.environ.get("PINN_SINE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pinn_sine"


def _data_digest(ref: ReferenceField) -> str:
    h = hashlib.sha256()
    for name in list(ref.coords) + list(ref.fields):
        arr = ref.coords.get(name) if name in ref.coords else ref.fields[name]
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    if ref.mask is not None:
        h.update(np.ascontiguousarray(ref.mask.astype(np.uint8)).tobytes())
    return h.hexdigest()


def save_reference(ref: ReferenceField, path: str | os.PathLike) -> Path:
    """Write ``ref`` to ``path`` atomically (a temp file in the same folder, then rename)."""
    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            scales = []
            for name, c in ref.coords.items():
                ds = f.create_dataset(name, data=np.asarray(c))
                ds.make_scale(name)
                scales.append(ds)
            grid_datasets = []
            for name, data in ref.fields.items():
                ds = f.create_dataset(name, data=np.asarray(data), compression="gzip", shuffle=True)
                grid_datasets.append(ds)
            if ref.mask is not None:
                grid_datasets.append(f.create_dataset("mask", data=ref.mask.astype(np.uint8)))
            for ds in grid_datasets:
                for k, scale in enumerate(scales):
                    ds.dims[k].attach_scale(scale)
            f.attrs.update({
                "schema_version": SCHEMA_VERSION,
                "problem": ref.problem,
                "params_json": json.dumps(ref.params, sort_keys=True, default=str),
                "params_hash": ref.hash,
                "solver": ref.solver,
                "order": ref.order,
                "spacing_json": json.dumps(ref.spacing),
                "attrs_json": json.dumps(ref.attrs, sort_keys=True),
                "coords": json.dumps(list(ref.coords)),
                "fields": json.dumps(list(ref.fields)),
                "data_sha256": _data_digest(ref),
                "package_version": __version__,
            })
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_reference(path: str | os.PathLike, *, expect_hash: str | None = None) -> ReferenceField:
    """Read a reference file and check it: schema version, that the stored parameters
    hash to the stored hash (and to ``expect_hash`` when given), shapes and a digest of
    the data. Raises :class:`ReferenceFileError` naming what is wrong.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ReferenceFileError(f"{path}: cannot be opened as HDF5 ({err}); delete it to recompute.") from err
    with f:
        try:
            version = int(f.attrs["schema_version"])
        except KeyError:
            raise ReferenceFileError(f"{path}: no schema_version attribute; not a pinn_sine reference file.") from None
        if version != SCHEMA_VERSION:
            raise ReferenceFileError(f"{path}: schema version {version}, this package reads {SCHEMA_VERSION}; "
                                     "recompute the reference.")
        try:
            problem = str(f.attrs["problem"])
            params = json.loads(f.attrs["params_json"])
            stored_hash = str(f.attrs["params_hash"])
            coord_names = json.loads(f.attrs["coords"])
            field_names = json.loads(f.attrs["fields"])
            coords = {n: f[n][()] for n in coord_names}
            fields = {n: f[n][()] for n in field_names}
            mask = f["mask"][()].astype(bool) if "mask" in f else None
            ref = ReferenceField(problem=problem, params=params, coords=coords, fields=fields,
                                 solver=str(f.attrs["solver"]), order=int(f.attrs["order"]),
                                 spacing=json.loads(f.attrs["spacing_json"]), mask=mask,
                                 attrs=json.loads(f.attrs["attrs_json"]))
            digest = str(f.attrs["data_sha256"])
        except (KeyError, OSError, ValueError, TypeError) as err:
            raise ReferenceFileError(f"{path}: missing or unreadable content ({err}); recompute the reference.") from err
    actual = params_hash(problem, params)
    if actual != stored_hash:
        raise ReferenceFileError(f"{path}: the stored parameters hash to {actual[:12]}, the file says "
                                 f"{stored_hash[:12]}; the file was edited or corrupted.")
    if expect_hash is not None and stored_hash != expect_hash:
        raise ReferenceFileError(f"{path}: parameters hash {stored_hash[:12]} does not match the requested "
                                 f"{expect_hash[:12]}; it belongs to other parameters.")
    if _data_digest(ref) != digest:
        raise ReferenceFileError(f"{path}: data digest mismatch (truncated or modified data); recompute it.")
    return ref


def cached_reference(problem: str, params: dict, compute: Callable[[], ReferenceField], *,
                     cache: bool = True) -> ReferenceField:
    """Return the cached reference for (problem, params), computing and storing it if
    absent. A cached file that fails :func:`load_reference` is reported with a warning
    and recomputed, never used.
    """
    key = params_hash(problem, params)
    path = cache_dir() / f"{problem}-{key[:16]}.h5"
    if cache and path.exists():
        try:
            return load_reference(path, expect_hash=key)
        except ReferenceFileError as err:
            warnings.warn(f"discarding cached reference: {err}", RuntimeWarning, stacklevel=2)
    ref = compute()
    if ref.hash != key:
        raise RuntimeError(f"reference computed for {problem} carries parameters that hash to {ref.hash[:12]}, "
                           f"expected {key[:12]}")
    if cache:
        save_reference(ref, path)
    return ref
