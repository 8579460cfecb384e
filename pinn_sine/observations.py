"""Point observations of a problem's solution, the data of an inverse problem.

    y_i = u(x_i) + e_i,   e_i ~ N(0, sigma_i^2)   (i = 1..n, one sigma per output column)

An :class:`Observations` holds the points x_i (n, in_dim), the values y_i (n, out_dim),
optionally the noise levels sigma_i (absolute standard deviations, (n, out_dim)) and,
for synthetic draws, the clean values u(x_i). Its data term is the normalised residual

    r_i = (u_net(x_i) - y_i) / s_i

(:meth:`Observations.residual`) with s_i = sigma_i where the noise is given (then
sum_i r_i^2 is chi^2 and its mean is ~1 at the truth), else the RMS of the values of
each output column (:meth:`Observations.scale`), so the term is O(1) like the
problem's own normalised residual terms.

Observations come from arrays (:meth:`Observations.from_arrays`), a file
(:meth:`Observations.from_file`: the HDF5 file :meth:`Observations.save` writes, or an
``.npz`` of named arrays), or a synthetic draw from the problem's exact solution or its
finite-difference reference (:func:`synthetic`; the ``pinn-sine observe`` command).
The receivers :func:`line`, :func:`ring` and :func:`sensors` lay out points.

File layout (``kind`` "observations", schema :data:`SCHEMA_VERSION`):
    /points   (n, in_dim) float64, the columns named by ``input_names``
    /values   (n, out_dim) float64
    /noise    (n, out_dim) float64, optional: absolute standard deviations
    /truth    (n, out_dim) float64, optional: the clean values of a synthetic draw
    attrs: schema_version, kind, input_names (JSON list), provenance_json, digest
           (:meth:`Observations.digest`), sha256 (over all of the above: data,
           names, provenance, truth), package_version (informational)
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import numbers
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._checks import non_negative, positive

#: the observations file format this module reads and writes
SCHEMA_VERSION = 1
#: the ``kind`` attribute of an observations file (a reference file says "reference")
FILE_KIND = "observations"
#: where the clean values of a synthetic draw come from
SOURCES = ("auto", "exact", "reference")
#: degree of the tensor-product B-spline that interpolates a reference grid (quintic:
#: on Wave1D's default grid its error at random points, 3.2e-9, is that of the
#: reference itself, 2.2e-9; cubic is 3.8e-7)
INTERPOLATION_DEGREE = 5
#: the arrays an ``.npz`` observations file may hold
NPZ_ARRAYS = ("points", "values", "noise", "truth", "input_names")
#: relative tolerance (of the box width) of :meth:`Observations.check`
BOUNDS_TOL = 1e-12


class ObservationsFileError(ValueError):
    """An observations file that cannot be read or trusted (format, schema, digest,
    shapes, dtypes, values); the message names the file, what is wrong and the fix."""


class Observations:
    """Point observations y_i ~ u(x_i) + noise of a problem's solution.

    Attributes:
        points: (n, in_dim) float64, column a is input ``input_names[a]``.
        values: (n, out_dim) float64, the observed values (column c is network output c).
        noise: (n, out_dim) float64 absolute standard deviations (> 0), or None: unknown,
            or clean data.
        input_names: the inputs, in the problem's order, e.g. ("t", "x").
        provenance: JSON-serialisable record of where the data came from:
            ``{"kind": "arrays"}`` (or the caller's record), ``{"kind": "file", "path",
            "sha256", "format", "stored"?}`` (:meth:`from_file`; ``stored`` is the
            provenance the file itself holds) or ``{"kind": "synthetic", "problem",
            "params", "noise", "seed", "source", "points", ...}`` (:func:`synthetic`).
        truth: (n, out_dim) the clean values where known (synthetic draws), else None.

    Build with :meth:`from_arrays`, :meth:`from_file` or :func:`synthetic`; the
    constructor takes the same arguments as :meth:`from_arrays` and checks them.
    """

    def __init__(self, points, values, noise=None, *, input_names: Sequence[str], provenance: dict | None = None,
                 truth=None):
        self.points = _matrix(points, "points", "give one row per observation, e.g. points.reshape(-1, 1) for "
                                                "one input")
        n, d = self.points.shape
        self.input_names = _names(input_names, d)
        values = _as_float64(values, "values")
        if values.ndim == 1:  # one output: (n,) is (n, 1)
            values = values.reshape(-1, 1)
        self.values = _matrix(values, "values", "give one row per observation and one column per output")
        if self.values.shape[0] != n:
            raise ValueError(f"values has {self.values.shape[0]} rows, points has {n}; give one value row per "
                             "observation point.")
        self.noise = None if noise is None else _noise(noise, self.values.shape)
        self.truth = None
        if truth is not None:
            truth = _as_float64(truth, "truth")
            if truth.ndim == 1:
                truth = truth.reshape(-1, 1)
            if tuple(truth.shape) != tuple(self.values.shape):
                raise ValueError(f"truth has shape {tuple(truth.shape)}, values {tuple(self.values.shape)}; the "
                                 "clean values are one per observed value.")
            self.truth = _matrix(truth, "truth", "give the clean values of the observations")
        self.provenance = _provenance(provenance)
        rms = self.values.pow(2).mean(dim=0).sqrt()
        # a column of zeros gets the largest column's RMS (else 1): the divisor is never 0
        fallback = float(rms.max()) if float(rms.max()) > 0 else 1.0
        self._rms = torch.where(rms > 0, rms, torch.full_like(rms, fallback))

    # ----- construction ----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, points, values, noise=None, *, input_names: Sequence[str], provenance: dict | None = None,
                    truth=None) -> Observations:
        """Observations from arrays (NumPy, torch or nested lists).

        Args:
            points: (n, in_dim), n >= 1, finite.
            values: (n, out_dim) (or (n,) for one output), finite.
            noise: absolute standard deviations, > 0 and finite, broadcastable to
                (n, out_dim): a number, one per column (out_dim,), one per point (n, 1),
                or (n, out_dim); None when unknown (the residual is then scaled by the
                values' RMS).
            input_names: one name per column of ``points``, the problem's ``input_names``.
            provenance: a JSON-serialisable dict with a "kind" (default ``{"kind": "arrays"}``).
            truth: the clean values (n, out_dim), where known.

        Raises ValueError naming the argument and the fix: a wrong shape, a non-finite
        value (the first bad row), noise <= 0, names that do not match the columns.
        """
        return cls(points, values, noise, input_names=input_names, provenance=provenance, truth=truth)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, input_names: Sequence[str] | None = None) -> Observations:
        """Observations read from ``path`` and checked.

        Formats, by suffix:
            ``.h5`` / ``.hdf5``: the file :meth:`save` writes (schema version, kind, the
                stored SHA-256 recomputed over data, names, truth and provenance, shapes,
                dtypes, finite values). ``input_names``, when given, must be the file's.
            ``.npz``: arrays "points" (n, in_dim), "values" (n, out_dim) or (n,), optional
                "noise" (broadcastable to values), "truth" and "input_names" (strings); the
                input names come from the file or the ``input_names`` keyword. Any other
                array is refused (nothing is silently ignored).

        ``provenance`` is ``{"kind": "file", "path": <absolute path>, "sha256": <of the
        file's bytes>, "format": "h5" | "npz"}`` plus, for HDF5, ``"stored"``: the
        provenance the file holds (a synthetic draw's problem, noise, seed, ...).
        Raises :class:`ObservationsFileError` (a ValueError) naming the file, the
        problem and the fix.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".h5", ".hdf5", ".npz"):
            raise ObservationsFileError(f"{path}: unknown observations format {path.suffix!r}; the suffixes read are "
                                        "['.h5', '.hdf5', '.npz'] (write one with Observations.save or np.savez).")
        if path.is_dir():
            raise ObservationsFileError(f"{path}: is a directory, expected an observations file.")
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ObservationsFileError(f"{path}: cannot be read ({err.strerror or err}); check the path.") from None
        file_record = {"kind": "file", "path": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest()}
        if suffix == ".npz":
            return _read_npz(cls, path, raw, input_names, {**file_record, "format": "npz"})
        return _read_h5(cls, path, raw, input_names, {**file_record, "format": "h5"})

    # ----- output ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the observations to ``path`` (``.h5`` or ``.hdf5``) atomically: the HDF5
        file is built in memory and written by :func:`pinn_sine._io.write_bytes` (a temp
        file in the same folder, fsync, then ``os.replace``), so a failure leaves
        ``path`` as it was. :meth:`from_file` reads it back with the same digest."""
        import h5py

        from . import __version__
        from ._io import write_bytes

        path = Path(path)
        if path.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"{path}: observations are saved as HDF5; name the file *.h5 (np.savez writes an .npz "
                             "that from_file reads too).")
        arrays = self._arrays(with_truth=True)
        names_json = json.dumps(list(self.input_names))
        provenance_json = json.dumps(self.provenance, sort_keys=True)
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            for name, arr in arrays:
                ds = f.create_dataset(name, data=arr)
                ds.attrs["description"] = _DATASET_DESCRIPTIONS[name]
                if name == "points":
                    ds.attrs["columns"] = names_json
            f.attrs.update({"schema_version": SCHEMA_VERSION, "kind": FILE_KIND, "input_names": names_json,
                            "provenance_json": provenance_json, "digest": self.digest(),
                            "sha256": _file_digest(SCHEMA_VERSION, names_json, provenance_json, arrays),
                            "package_version": __version__})
        with buffer.getbuffer() as data:
            return write_bytes(path, data)

    def digest(self) -> str:
        """SHA-256 of the input names and of the points, values and noise (name, dtype,
        shape, bytes): what a fit sees. The same after :meth:`save` and :meth:`from_file`;
        it does not cover the provenance or the truth."""
        h = hashlib.sha256(json.dumps(list(self.input_names)).encode())
        for name, arr in self._arrays(with_truth=False):
            _update(h, name, arr)
        return h.hexdigest()

    def record(self) -> dict:
        """What a run records (config.json, metrics.json): ``{"digest", "n", "out_dim",
        "input_names", "noise": bool, "provenance"}``."""
        return {"digest": self.digest(), "n": len(self), "out_dim": self.out_dim,
                "input_names": list(self.input_names), "noise": self.noise is not None,
                "provenance": json.loads(json.dumps(self.provenance))}

    # ----- use -------------------------------------------------------------------------
    @property
    def in_dim(self) -> int:
        return int(self.points.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.values.shape[1])

    def check(self, problem) -> None:
        """Raise ValueError unless these observations fit ``problem``: the same
        ``input_names`` and ``out_dim``, and every point inside ``problem.bounds`` (within
        :data:`BOUNDS_TOL` of each box width); the message names the first point outside
        and the bounds."""
        names = tuple(problem.input_names)
        if self.input_names != names:
            raise ValueError(f"the observations have the inputs {self.input_names}, {problem.name} has {names}; "
                             f"give the points' columns in the problem's order {names}.")
        if self.out_dim != int(problem.out_dim):
            raise ValueError(f"the observations have {self.out_dim} value column(s), {problem.name} has "
                             f"out_dim={problem.out_dim}; give one column per network output.")
        _check_inside(self.points, problem, "observation point")

    def scale(self) -> Tensor:
        """(n, out_dim): the divisor of each residual entry, s_ic = RMS_c sigma_ic / mean_i sigma_ic:
        the RMS over the points of value column c (a column of zeros takes the largest
        column's RMS, or 1 when every value is 0: never 0), times the observation's noise
        relative to the column's mean noise where noise is given (a precise observation
        weighs more, a noisy one less; equal noise is no weighting).

        The data term is then relative, like the package's other terms (each normalised
        by the size of its data): at the truth its loss is the squared relative noise
        level (1e-4 for 1% noise), small beside the equation's O(1) normalisation, so
        that the network does not bend to fit the noise. Its residual standard deviation
        (:func:`pinn_sine.inverse.estimate`) reads as the relative noise level."""
        rms = self._rms.expand(len(self), -1)
        if self.noise is None:
            return rms
        return rms * self.noise / self.noise.mean(dim=0, keepdim=True)

    def residual(self, u: Tensor) -> Tensor:
        """(u - values) / scale(), (n, out_dim): ``u`` is the network at ``points``
        (n, out_dim); the result has ``u``'s dtype and device (differentiable in u)."""
        if not isinstance(u, Tensor) or u.ndim != 2 or tuple(u.shape) != tuple(self.values.shape):
            shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(f"u has shape {shape}; the residual needs the network at the {len(self)} observation "
                             f"points, ({len(self)}, {self.out_dim}): u = net(observations.points).")
        values = self.values.to(device=u.device, dtype=u.dtype)
        return (u - values) / self.scale().to(device=u.device, dtype=u.dtype)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        return (f"Observations(n={len(self)}, inputs={self.input_names}, out_dim={self.out_dim}, "
                f"noise={'given' if self.noise is not None else 'none'}, "
                f"provenance={self.provenance.get('kind')!r})")

    def _arrays(self, *, with_truth: bool) -> list[tuple[str, np.ndarray]]:
        out = [("points", self.points.numpy()), ("values", self.values.numpy())]
        if self.noise is not None:
            out.append(("noise", self.noise.numpy()))
        if with_truth and self.truth is not None:
            out.append(("truth", self.truth.numpy()))
        return out


_DATASET_DESCRIPTIONS = {
    "points": "observation points, one row per observation; columns: the attribute 'columns'",
    "values": "observed values, one column per network output",
    "noise": "absolute standard deviation of each observed value",
    "truth": "clean values of a synthetic draw (not seen by a fit)",
}


# ----- synthetic observations ----------------------------------------------------------
def synthetic(problem, points, *, noise: float = 0.0, seed: int = 0, resolution: int | None = None,
              source: str = "auto", layout: str | None = None,
              max_interpolation_error: float = 1e-3) -> Observations:
    """Observations of ``problem``'s solution with seeded Gaussian noise.

    Clean values u(x_i): ``problem.exact`` (``source="exact"``; ``"auto"`` takes it where
    ``problem.exact_solution`` is not None), else the problem's reference
    ``problem.reference(resolution)`` interpolated at the points
    (``source="reference"``) by a tensor-product interpolating B-spline of degree
    :data:`INTERPOLATION_DEGREE` per axis (lower on an axis with fewer nodes), each
    output column alike. On Wave1D (default grid 201 x 201) the interpolated reference
    agrees with the exact solution to 3.2e-9 relative L2 at 4000 random points, the
    reference's own error being 2.2e-9. The interpolation error is estimated as the
    relative RMS difference from the degree-7 interpolant (degree - 2 on axes too short
    for 7) and recorded; above ``max_interpolation_error`` it is an error (points
    between a few snapshot times, a singular field), naming the fixes.

    Noise: relative level ``noise`` >= 0: sigma_c = noise * RMS over the points of the
    clean column c, values = clean + sigma_c * N(0, 1); ``noise == 0`` gives clean values
    and ``noise`` None.

    Args:
        problem: a :class:`~pinn_sine.problems.Problem`.
        points: (n, in_dim) array or tensor inside ``problem.bounds``, or an int n: then
            drawn uniformly in the bounds.
        seed: one ``torch.Generator().manual_seed(seed)`` draws the points (when n is
            given) and then the noise.
        resolution: the reference's resolution (None: the problem's default); with
            ``source="exact"`` it must be None.
        source: "auto", "exact" or "reference" (:data:`SOURCES`).
        layout: a description of how the given points were laid out (e.g.
            "ring:0,0,0.5"), recorded in the provenance.
        max_interpolation_error: the largest estimated relative interpolation error
            accepted (source "reference").

    ``provenance``: ``{"kind": "synthetic", "problem", "params", "noise", "seed",
    "source": "exact" | "reference", "points": {"rule": "uniform" | "given", "n", ...}}``
    and for the reference ``"reference_hash"``, ``"resolution"``, ``"reference_error"``
    (its error estimate, or None) and ``"interpolation"`` (method, degrees, error
    estimate). ``truth`` holds the clean values.
    """
    if source not in SOURCES:
        raise ValueError(f'Invalid source "{source}". Must be one of {list(SOURCES)}.')
    noise = non_negative("noise", noise, "it is a relative standard deviation", "e.g. noise=0.01 for 1%")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got seed={seed!r}.")
    max_interpolation_error = positive("max_interpolation_error", max_interpolation_error,
                                       "e.g. max_interpolation_error=1e-3 (relative)")
    exact = problem.exact_solution
    if source == "auto":
        source = "exact" if exact is not None else "reference"
    if source == "exact":
        if exact is None:
            raise ValueError(f"{problem.name} has no exact solution; use source='reference' (its FD reference, "
                             "interpolated) or source='auto'.")
        if resolution is not None:
            raise ValueError(f"resolution={resolution!r} is for a reference; the values come from the exact solution "
                             "of " + f"{problem.name} (source='exact'): leave resolution out, or use "
                             "source='reference'.")
    generator = torch.Generator().manual_seed(int(seed))
    bounds = torch.tensor(problem.bounds, dtype=torch.float64)
    if isinstance(points, numbers.Integral) and not isinstance(points, bool):
        if points < 1:
            raise ValueError(f"points={points}: draw at least one observation (an int n >= 1, or an (n, in_dim) "
                             "array of points).")
        u = torch.rand(int(points), problem.in_dim, generator=generator, dtype=torch.float64)
        x = bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * u
        how = {"rule": "uniform", "n": int(points), "seed": int(seed), "bounds": bounds.tolist()}
    else:
        x = _matrix(points, "points", "give one row per observation point")
        if x.shape[1] != problem.in_dim:
            raise ValueError(f"points has {x.shape[1]} columns, {problem.name} has the inputs {problem.input_names}; "
                             f"give (n, {problem.in_dim}) points.")
        h = hashlib.sha256()
        _update(h, "points", x.numpy())
        how = {"rule": "given", "n": len(x), "sha256": h.hexdigest()}
    if layout is not None:
        how["layout"] = str(layout)
    _check_inside(x, problem, "observation point")
    provenance = {"kind": "synthetic", "problem": problem.name, "params": problem.params(), "noise": noise,
                  "seed": int(seed), "source": source, "points": how}
    if source == "exact":
        with torch.no_grad():
            clean = torch.as_tensor(exact(x)).detach().to(torch.float64).reshape(len(x), -1)
    else:
        ref = problem.reference(resolution)
        clean, interpolation = interpolate_reference(ref, x, problem.input_names)
        if interpolation["error_estimate"] > max_interpolation_error:
            raise ValueError(
                f"the interpolated reference of {problem.name} is uncertain at these points: estimated relative error "
                f"{interpolation['error_estimate']:.2e} > max_interpolation_error={max_interpolation_error:g} (grid "
                f"{dict(zip(ref.coords, ref.grid_shape))}); raise the resolution (or the problem's number of reference "
                "times), put the points on the grid's nodes or times (sensors(positions, times)), keep them away from "
                "a singularity, or allow more with max_interpolation_error= (--max-interpolation-error).")
        provenance.update(reference_hash=ref.hash, resolution=ref.params.get("resolution"),
                          reference_error=ref.error_estimate, interpolation=interpolation)
    if clean.shape != (len(x), problem.out_dim):
        raise ValueError(f"the clean values of {problem.name} have shape {tuple(clean.shape)}, expected "
                         f"({len(x)}, {problem.out_dim}).")
    if not torch.isfinite(clean).all():
        raise ValueError(f"the {source} solution of {problem.name} is not finite at "
                         f"{int((~torch.isfinite(clean)).any(dim=1).sum())} of the points; move them.")
    sigma = None
    values = clean.clone()
    if noise > 0:
        level = noise * clean.pow(2).mean(dim=0).sqrt()
        if not bool((level > 0).all()):
            zero = [c for c in range(problem.out_dim) if level[c] == 0]
            raise ValueError(f"output column(s) {zero} of {problem.name} are 0 at every point, so a relative noise of "
                             f"{noise:g} is 0 there; choose points where the solution is not 0, or noise=0.")
        sigma = level.expand(len(x), -1).clone()
        values = clean + sigma * torch.randn(len(x), problem.out_dim, generator=generator, dtype=torch.float64)
    return Observations(x, values, sigma, input_names=problem.input_names, provenance=provenance, truth=clean)


def interpolate_reference(ref, points: Tensor, input_names: Sequence[str] | None = None,
                          degree: int = INTERPOLATION_DEGREE) -> tuple[Tensor, dict]:
    """The reference field ``ref`` (a grid :class:`~pinn_sine.validation.ReferenceField`)
    at ``points`` (n, d) float64, every output column: ((n, out_dim) float64, a record).

    A tensor-product interpolating B-spline (not-a-knot, SciPy's ``make_interp_spline``
    along each axis, then ``NdBSpline``) of degree ``degree`` per axis, or the axis's
    node count - 1 where that is lower. The record: ``{"method", "degree", "error_estimate"}``,
    the estimate being ||S_k - S_k'|| / ||S_k|| over the points with k' = k + 2 (k - 2 on
    an axis too short for k + 2): a smooth field's interpolation error, exact (0) at grid
    nodes. Raises ValueError for a scattered reference, other input names, or a point
    outside the grid."""
    from scipy.interpolate import NdBSpline, make_interp_spline

    if ref.scattered:
        raise ValueError(f"the reference of {ref.problem} holds scattered points, which cannot be interpolated here; "
                         "observe an exact solution (source='exact') or give the reference's own points.")
    names = tuple(ref.coords)
    if input_names is not None and names != tuple(input_names):
        raise ValueError(f"the reference has the coordinates {names}, the problem the inputs {tuple(input_names)}.")
    grids = [np.asarray(c, dtype=np.float64) for c in ref.coords.values()]
    x = points.detach().to(torch.float64).cpu().numpy()
    for a, (name, g) in enumerate(zip(names, grids)):
        outside = (x[:, a] < g[0] - BOUNDS_TOL * (g[-1] - g[0])) | (x[:, a] > g[-1] + BOUNDS_TOL * (g[-1] - g[0]))
        if outside.any():
            i = int(np.argmax(outside))
            raise ValueError(f"point {i} has {name}={float(x[i, a])!r}, outside the reference grid's {name} in "
                             f"[{float(g[0])}, {float(g[-1])}]; give points inside it.")
    x = np.clip(x, [g[0] for g in grids], [g[-1] for g in grids])
    shape = ref.grid_shape
    columns = [f.reshape(*shape, -1) for f in (np.asarray(ref.fields[k], dtype=np.float64) for k in ref.fields)]
    stacked = np.concatenate(columns, axis=-1)  # (grid..., out_dim): network output column c is [..., c]

    def spline(degrees):
        knots, coef = [], stacked
        for a, (g, k) in enumerate(zip(grids, degrees)):
            fit = make_interp_spline(g, coef, k=k, axis=a)
            knots.append(fit.t)
            coef = np.moveaxis(fit.c, 0, a)
        return NdBSpline(tuple(knots), coef, tuple(degrees))(x)

    main = [min(degree, len(g) - 1) for g in grids]
    check = [min(k + 2, len(g) - 1) if min(k + 2, len(g) - 1) > k else max(k - 2, 1) for k, g in zip(main, grids)]
    value = spline(main).reshape(len(x), -1)
    other = spline(check).reshape(len(x), -1)
    size = float(np.sqrt(np.mean(value ** 2)))
    diff = float(np.sqrt(np.mean((value - other) ** 2)))
    estimate = diff / size if size > 0 else (0.0 if diff == 0 else math.inf)
    record = {"method": "tensor-product interpolating B-spline (not-a-knot)", "degree": main,
              "error_estimate": estimate}
    return torch.from_numpy(np.ascontiguousarray(value)), record


# ----- receivers -----------------------------------------------------------------------
def line(start, end, n: int) -> Tensor:
    """n points evenly spaced on the segment from ``start`` to ``end`` (both included;
    n = 1 gives ``start``), in the problem's coordinates: (n, d) float64."""
    a, b = _vector(start, "start"), _vector(end, "end")
    if a.shape != b.shape:
        raise ValueError(f"start has {len(a)} coordinates, end {len(b)}; give both in the problem's {len(a)} or "
                         f"{len(b)} inputs.")
    if torch.equal(a, b):
        raise ValueError(f"start == end == {a.tolist()}: the segment is a point; give two different ends.")
    n = _count(n, "n")
    s = torch.linspace(0.0, 1.0, n, dtype=torch.float64)[:, None]
    return a + s * (b - a)


def ring(center, radius: float, n: int) -> Tensor:
    """n points on the circle of ``radius`` about ``center`` (2-D), at the angles
    2 pi k / n, k = 0..n-1 (from the +x axis, counter-clockwise): (n, 2) float64."""
    c = _vector(center, "center")
    if len(c) != 2:
        raise ValueError(f"center has {len(c)} coordinates; a ring lies in a plane: give (x, y).")
    r = positive("radius", radius, "e.g. radius=0.5.")
    n = _count(n, "n")
    angle = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    return c + r * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def sensors(positions, times) -> Tensor:
    """Fixed sensors of a time-dependent problem (inputs ("t", ...)): every position at
    every time, (m * k, d) float64 with column 0 the time and columns 1..d-1 the
    position, as the problem's ``input_names``. Row i * k + j is sensor i at time j:
    each sensor's time series is contiguous, in the order of ``times``.

    Args:
        positions: (m, d - 1) (or (m,) for one space dimension).
        times: (k,) times.
    """
    p = _as_float64(positions, "positions")
    if p.ndim == 1:
        p = p.reshape(-1, 1)
    p = _matrix(p, "positions", "give one row per sensor, (m, d - 1)")
    t = _as_float64(times, "times")
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"times has shape {tuple(t.shape)}; give a non-empty 1-D sequence of times.")
    if not torch.isfinite(t).all():
        raise ValueError("times has non-finite values (nan or inf); give finite times.")
    m, k = len(p), len(t)
    return torch.cat([t.repeat(m)[:, None], p.repeat_interleave(k, dim=0)], dim=1)


# ----- helpers -------------------------------------------------------------------------
def _as_float64(a, what: str) -> Tensor:
    """``a`` as a float64 CPU tensor (a copy), or a ValueError naming ``what``."""
    if isinstance(a, Tensor):
        if a.is_complex():
            raise ValueError(f"{what} is complex; give real and imaginary parts as two columns.")
        return a.detach().to(device="cpu", dtype=torch.float64).clone()
    if np.iscomplexobj(a):
        raise ValueError(f"{what} is complex; give real and imaginary parts as two columns.")
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} is not numeric ({err}); give an array of numbers.") from None
    return torch.from_numpy(arr)


def _matrix(a, what: str, fix: str) -> Tensor:
    """``a`` as a finite float64 (n, m) tensor with n, m >= 1."""
    t = _as_float64(a, what)
    if t.ndim != 2:
        raise ValueError(f"{what} has shape {tuple(t.shape)}, expected a 2-D array (n, columns); {fix}.")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{what} has shape {tuple(t.shape)}: no {'rows' if t.shape[0] < 1 else 'columns'}; "
                         "give at least one observation.")
    bad = ~torch.isfinite(t)
    if bad.any():
        rows = bad.any(dim=1)
        first = int(torch.nonzero(rows)[0])
        raise ValueError(f"{what} has {int(bad.sum())} non-finite values (nan or inf) in {int(rows.sum())} of its "
                         f"{len(t)} rows, the first in row {first} ({t[first].tolist()}); drop those observations.")
    return t.contiguous()


def _names(names, d: int) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"input_names must be a sequence of non-empty strings, e.g. ('t', 'x'), got {names!r}.")
    names = tuple(names)
    if len(names) != d:
        raise ValueError(f"input_names {names} names {len(names)} inputs, the points have {d} columns; give one name "
                         "per column, the problem's input_names.")
    if len(set(names)) != len(names):
        raise ValueError(f"input_names {names} repeats a name; each input has its own.")
    return names


def _noise(noise, shape: tuple) -> Tensor:
    s = _as_float64(noise, "noise")
    try:
        s = torch.broadcast_to(s, shape).clone()
    except RuntimeError:
        raise ValueError(f"noise has shape {tuple(s.shape)}, which does not broadcast to the values' {tuple(shape)}; "
                         "give a number, one per column (out_dim,), one per point (n, 1) or (n, out_dim).") from None
    bad = ~(torch.isfinite(s) & (s > 0))
    if bad.any():
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"noise must be finite and > 0 (absolute standard deviations), got {float(s[first])!r} at "
                         f"{first} ({int(bad.sum())} such entries); give noise=None for unknown or clean data.")
    return s.contiguous()


def _provenance(provenance) -> dict:
    if provenance is None:
        return {"kind": "arrays"}
    if not isinstance(provenance, dict) or not isinstance(provenance.get("kind"), str):
        raise ValueError(f"provenance must be a dict with a 'kind' string, e.g. {{'kind': 'arrays'}}, got "
                         f"{provenance!r:.80}.")
    try:
        return json.loads(json.dumps(provenance, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"provenance must be JSON-serialisable (numbers, strings, lists, dicts): {err}.") from None


def _check_inside(points: Tensor, problem, what: str) -> None:
    """ValueError naming the first of ``points`` outside ``problem.bounds`` (tolerance
    :data:`BOUNDS_TOL` of each width)."""
    bounds = torch.tensor(problem.bounds, dtype=torch.float64)
    lo, hi = bounds[:, 0], bounds[:, 1]
    tol = BOUNDS_TOL * (hi - lo)
    outside = ((points < lo - tol) | (points > hi + tol)).any(dim=1)
    if outside.any():
        i = int(torch.nonzero(outside)[0])
        where = ", ".join(f"{n}={float(v)!r}" for n, v in zip(problem.input_names, points[i]))
        box = ", ".join(f"{n} in [{float(a):g}, {float(b):g}]" for n, (a, b) in zip(problem.input_names, bounds))
        raise ValueError(f"{what} {i} ({where}) lies outside the domain of {problem.name}: {box} "
                         f"({int(outside.sum())} of {len(points)} points outside); drop them or move them inside.")


def _vector(v, what: str) -> Tensor:
    t = _as_float64(v, what)
    if t.ndim != 1 or len(t) == 0 or not torch.isfinite(t).all():
        raise ValueError(f"{what} must be a point, a 1-D sequence of finite coordinates, got {v!r}.")
    return t


def _count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{what} must be an integer >= 1 (a number of points), got {what}={n!r}.")
    return int(n)


def _update(h, name: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
    h.update(arr.tobytes())


def _file_digest(schema: int, names_json: str, provenance_json: str, arrays) -> str:
    """SHA-256 of everything an observations file holds but itself: schema, kind, names,
    provenance and every array (the parsed JSON, so the digest is that of the content)."""
    meta = {"schema_version": schema, "kind": FILE_KIND, "input_names": json.loads(names_json),
            "provenance": json.loads(provenance_json)}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name, arr in arrays:
        _update(h, name, arr)
    return h.hexdigest()


# ----- reading -------------------------------------------------------------------------
def _read_npz(cls, path: Path, raw: bytes, input_names, record: dict) -> Observations:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ObservationsFileError(f"{path}: cannot be read as .npz ({err}); write it with np.savez(path, "
                                    "points=..., values=..., noise=...).") from None
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    missing = [k for k in ("points", "values") if k not in arrays]
    if unknown or missing:
        raise ObservationsFileError(f"{path}: holds the arrays {sorted(arrays)}; an observations .npz has 'points' "
                                    f"and 'values' and may have {list(NPZ_ARRAYS[2:])}"
                                    + (f" (missing {missing})" if missing else "")
                                    + (f" (unknown {unknown})" if unknown else "") + "; rename or drop arrays.")
    for k, a in arrays.items():
        if k != "input_names" and a.dtype.kind not in "fiu":
            raise ObservationsFileError(f"{path}: array {k!r} has dtype {a.dtype}; give real numbers (float64).")
    names = input_names
    if "input_names" in arrays:
        stored = arrays["input_names"]
        if stored.dtype.kind not in "US" or stored.ndim != 1:
            raise ObservationsFileError(f"{path}: array 'input_names' is {stored.dtype} of shape {stored.shape}; give "
                                        "a 1-D array of strings, e.g. np.array(['t', 'x']).")
        stored = tuple(str(s) for s in stored)
        if input_names is not None and tuple(input_names) != stored:
            raise ObservationsFileError(f"{path}: the file names the inputs {stored}, input_names= says "
                                        f"{tuple(input_names)}; leave input_names out or fix the file.")
        names = stored
    if names is None:
        raise ObservationsFileError(f"{path}: no array 'input_names'; pass input_names=('t', 'x') (the problem's "
                                    "input_names) or store them in the file.")
    try:
        return cls(arrays["points"], arrays["values"], arrays.get("noise"), input_names=names, provenance=record,
                   truth=arrays.get("truth"))
    except ValueError as err:
        raise ObservationsFileError(f"{path}: {err}") from None


def _read_h5(cls, path: Path, raw: bytes, input_names, record: dict) -> Observations:
    import h5py

    try:
        f = h5py.File(io.BytesIO(raw), "r")
    except (OSError, ValueError) as err:
        raise ObservationsFileError(f"{path}: cannot be opened as HDF5 ({err}); draw the observations again "
                                    "(pinn-sine observe) or give an .npz.") from None
    with f:
        kind = f.attrs.get("kind")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind != FILE_KIND:
            what = "a pinn_sine reference file" if kind in ("reference", "prediction") else \
                f"an HDF5 file without kind={FILE_KIND!r}"
            raise ObservationsFileError(f"{path}: is {what}, not observations; draw observations with pinn-sine "
                                        "observe or synthetic(...).save(path).")
        schema = f.attrs.get("schema_version")
        if isinstance(schema, (bool, np.bool_)) or not isinstance(schema, (int, np.integer)):
            raise ObservationsFileError(f"{path}: schema_version is {schema!r}, expected an integer; the file was "
                                        "edited. Draw the observations again.")
        if int(schema) != SCHEMA_VERSION:
            raise ObservationsFileError(f"{path}: schema version {int(schema)}, this package reads {SCHEMA_VERSION}; "
                                        "draw the observations again with this version.")
        strings = {}
        for name in ("input_names", "provenance_json", "digest", "sha256"):
            value = f.attrs.get(name)
            value = value.decode() if isinstance(value, bytes) else value
            if not isinstance(value, str):
                raise ObservationsFileError(f"{path}: attribute {name!r} is {value!r}, expected a string; the file "
                                            "was edited or damaged. Draw the observations again.")
            strings[name] = value
        try:
            names = json.loads(strings["input_names"])
            provenance = json.loads(strings["provenance_json"])
        except json.JSONDecodeError as err:
            raise ObservationsFileError(f"{path}: a JSON attribute is not valid ({err}); the file was edited.") \
                from None
        unknown = sorted(set(f) - set(_DATASET_DESCRIPTIONS))
        if unknown:
            raise ObservationsFileError(f"{path}: holds the datasets {unknown}, which an observations file does not "
                                        f"({list(_DATASET_DESCRIPTIONS)}); the file was edited. Draw the observations "
                                        "again.")
        arrays = []
        for name in ("points", "values", "noise", "truth"):
            if name not in f:
                if name in ("points", "values"):
                    raise ObservationsFileError(f"{path}: no dataset {name!r}; not a whole observations file. Draw "
                                                "the observations again.")
                continue
            ds = f[name]
            if not isinstance(ds, h5py.Dataset) or ds.dtype != np.float64 or ds.ndim != 2:
                what = f"dtype {ds.dtype}, shape {ds.shape}" if isinstance(ds, h5py.Dataset) else "a group"
                raise ObservationsFileError(f"{path}: dataset {name!r} is {what}; expected a 2-D float64 array "
                                            "(n, columns). The file was edited; draw the observations again.")
            arrays.append((name, ds[()]))
    if _file_digest(int(schema), strings["input_names"], strings["provenance_json"], arrays) != strings["sha256"]:
        raise ObservationsFileError(f"{path}: digest mismatch: the data, names or provenance were modified or "
                                    "truncated since the file was written; draw the observations again.")
    if input_names is not None and tuple(input_names) != tuple(names):
        raise ObservationsFileError(f"{path}: the file's inputs are {tuple(names)}, input_names= says "
                                    f"{tuple(input_names)}; leave input_names out.")
    data = dict(arrays)
    try:
        obs = cls(data["points"], data["values"], data.get("noise"), input_names=names,
                  provenance={**record, "stored": provenance}, truth=data.get("truth"))
    except ValueError as err:
        raise ObservationsFileError(f"{path}: {err}") from None
    if obs.digest() != strings["digest"]:
        raise ObservationsFileError(f"{path}: the observations hash to {obs.digest()[:12]}, the file says "
                                    f"{strings['digest'][:12]}; the file was edited. Draw the observations again.")
    return obs
