"""Export a run's prediction, its reference and their difference for ParaView & co.

``pinn-sine export RUN_DIR --format vtk|xdmf`` (and :func:`export_run`) writes the
fields of ``prediction.h5`` beside the problem's reference on the reference grid,
through meshio (the optional ``export`` dependency). The spatial axes (every
coordinate but ``t``) become a mesh of points and line (1-D) or quad (2-D) cells;
each field ``u`` gives the point data ``prediction_u``, ``reference_u`` and
``error_u`` = prediction - reference (``mask`` too, where the reference has one). A
time-dependent run is a time series: one XDMF file with a step per reference time,
or for VTK one numbered file per time (``<stem>_0000.vtk`` ..., which ParaView opens
as one series). A scattered reference (from data) is a point cloud: its points (the
coordinates but ``t``, 1 to 3 of them) with one vertex cell each, and ``t`` as point
data where the points have a time.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: the formats of :func:`export_run` and their file suffixes
FORMATS = {"vtk": ".vtk", "xdmf": ".xdmf"}


def _meshio():
    try:
        import meshio
    except ImportError:
        raise ImportError("exporting needs meshio, which is not installed: pip install meshio "
                          "(or pip install 'pinn-sine[export]').") from None
    return meshio


def grid_mesh(coords: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Points (N, 3) and cells of the tensor grid over ``coords`` (1 or 2 axes), the
    points in C order of the grid (axis 0 slowest), as the fields are flattened."""
    axes = list(coords.values())
    if len(axes) not in (1, 2):
        raise ValueError(f"export meshes 1-D or 2-D spatial grids, got the axes {list(coords)}.")
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.zeros((mesh[0].size, 3))
    for d, m in enumerate(mesh):
        points[:, d] = m.ravel()
    if len(axes) == 1:
        i = np.arange(len(axes[0]) - 1)
        return points, [("line", np.stack([i, i + 1], axis=1))]
    nx, ny = len(axes[0]), len(axes[1])
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="ij")
    a = (i * ny + j).ravel()
    return points, [("quad", np.stack([a, a + ny, a + ny + 1, a + 1], axis=1))]


def point_cloud(coords: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Points (n, 3) and vertex cells of scattered points whose coordinates (1 to 3 axes,
    each of length n) are ``coords``."""
    axes = list(coords.values())
    if not 1 <= len(axes) <= 3:
        raise ValueError(f"export writes scattered points of 1 to 3 spatial axes, got the axes {list(coords)}.")
    n = len(axes[0])
    points = np.zeros((n, 3))
    for d, a in enumerate(axes):
        points[:, d] = a
    return points, [("vertex", np.arange(n).reshape(n, 1))]


def _point_data(pred: dict, ref, index: tuple, n_points: int) -> dict[str, np.ndarray]:
    data = {}
    for name, r in ref.fields.items():
        p, r = np.asarray(pred[name], dtype=float)[index], np.asarray(r, dtype=float)[index]
        shape = (n_points, -1) if p.ndim > len(ref.grid_shape) - len(index) else (n_points,)
        data[f"prediction_{name}"] = p.reshape(shape)
        data[f"reference_{name}"] = r.reshape(shape)
        data[f"error_{name}"] = (p - r).reshape(shape)
    if ref.mask is not None:
        data["mask"] = np.asarray(ref.mask)[index].reshape(n_points).astype(float)
    return data


def _check_space(path: Path, pred: dict, ref) -> None:
    """Refuse with :class:`~pinn_sine._io.WriteError` (ENOSPC) an export the disk cannot
    hold, before meshio writes: its XDMF writer goes through h5py, which on a full disk
    can crash the interpreter instead of raising. The estimate: the prediction, the
    reference and their difference in float64, plus the grid's points, and a quarter
    more for the format."""
    import errno
    import shutil

    from ._io import WriteError

    values = sum(np.asarray(v).size for v in pred.values()) + sum(np.asarray(v).size for v in ref.fields.values())
    points = (ref.grid_shape[0] if ref.scattered else
              int(np.prod([len(v) for k, v in ref.coords.items() if k != "t"]))) * 3
    need = int(1.25 * 8 * (2 * values + values // 2 + points)) + (1 << 20)
    free = shutil.disk_usage(path.parent).free
    if free < need:
        raise WriteError(path, OSError(errno.ENOSPC, f"No space left on device ({free / 1e6:.1f} MB free, the "
                                                     f"export needs about {need / 1e6:.1f} MB)"))


def export_fields(pred: dict[str, np.ndarray], ref, path: str | os.PathLike, fmt: str) -> list[Path]:
    """Write ``pred`` (fields shaped like ``ref.fields``), ``ref`` and their difference to
    ``path`` in the format ``fmt`` ("vtk" or "xdmf"); returns the files written (an
    XDMF file's heavy data go to the ``.h5`` beside it). A scattered ``ref`` is written
    as a point cloud (:func:`point_cloud`), ``t`` (if any) as point data."""
    if fmt not in FORMATS:
        raise ValueError(f'Invalid format "{fmt}". Must be one of {sorted(FORMATS)}.')
    meshio = _meshio()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_space(path, pred, ref)
    if ref.scattered:
        points, cells = point_cloud({k: v for k, v in ref.coords.items() if k != "t"})
        data = _point_data(pred, ref, (), len(points))
        if "t" in ref.coords:
            data["t"] = np.asarray(ref.coords["t"], dtype=float)
        meshio.write(path, meshio.Mesh(points, cells, point_data=data), file_format=fmt)
        return [path] + ([path.with_suffix(".h5")] if fmt == "xdmf" else [])
    timed = ref.names[0] == "t"
    space = {k: v for k, v in ref.coords.items() if k != "t"}
    points, cells = grid_mesh(space)
    n = len(points)
    if not timed:
        meshio.write(path, meshio.Mesh(points, cells, point_data=_point_data(pred, ref, (), n)), file_format=fmt)
        return [path] + ([path.with_suffix(".h5")] if fmt == "xdmf" else [])
    times = ref.coords["t"]
    if fmt == "xdmf":
        # meshio 5.3's TimeSeriesWriter puts its .h5 into the working directory, and the
        # .xdmf names it relative to itself: write from the target's folder.
        path, cwd = path.resolve(), os.getcwd()
        os.chdir(path.parent)
        try:
            with meshio.xdmf.TimeSeriesWriter(path.name) as writer:
                writer.write_points_cells(points, cells)
                for k, t in enumerate(times):
                    writer.write_data(float(t), point_data=_point_data(pred, ref, (k,), n))
        finally:
            os.chdir(cwd)
        return [path, path.with_suffix(".h5")]
    written = []
    for k, t in enumerate(times):
        step = path.with_name(f"{path.stem}_{k:04d}{path.suffix}")
        mesh = meshio.Mesh(points, cells, point_data=_point_data(pred, ref, (k,), n),
                           field_data={"TIME": np.array([float(t)])})
        meshio.write(step, mesh, file_format="vtk")
        written.append(step)
    return written


def _check_prediction(path: Path, predicted, config: dict) -> None:
    """``prediction.h5`` is this run's prediction: a file of kind "prediction" (not a
    reference copied in), of the config's problem and, where both record it, of the same
    run (``run_id``)."""
    from .validation.store import read_metadata

    kind = read_metadata(path).kind
    if kind != "prediction":
        raise ValueError(f"{path} is a {kind} file, not a network's prediction; the run's prediction.h5 was replaced.")
    if predicted.problem != config["problem"]["name"]:
        raise ValueError(f"{path} is a prediction of {predicted.problem!r}, the run solved "
                         f"{config['problem']['name']!r}.")
    mine, theirs = config.get("run_id"), predicted.params.get("run_id")
    if mine is not None and theirs is not None and mine != theirs:
        raise ValueError(f"{path} is the prediction of another run (run_id {theirs}, this folder's config.json: "
                         f"{mine}).")


def export_run(folder: str | os.PathLike, fmt: str = "vtk", path: str | os.PathLike | None = None) -> list[Path]:
    """Export the finished ``solve`` run in ``folder``: its ``prediction.h5`` against the
    reference of the problem its ``config.json`` describes (from the cache, computed
    when missing), to ``path`` (default ``folder/<problem>_fields.<vtk|xdmf>``).
    Returns the files written.

    Raises:
        FileNotFoundError: no such run folder, config or prediction (an unfinished run).
        ValueError: an unknown format, a reference grid other than the prediction's, or
            a ``path`` whose XDMF data file would replace the run's ``prediction.h5``.
        ImportError: meshio is not installed.
    """
    from .runs import CONFIG_NAME, build_problem, read_config
    from .validation.store import load_reference

    if fmt not in FORMATS:
        raise ValueError(f'Invalid format "{fmt}". Must be one of {sorted(FORMATS)}.')
    _meshio()
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist.")
    config = read_config(folder / CONFIG_NAME)
    prediction_path = folder / "prediction.h5"
    if not prediction_path.exists():
        raise FileNotFoundError(f"{folder} holds no prediction.h5: the run has not finished. Resume it "
                                f"(pinn-sine solve --resume {folder}) and export it afterwards.")
    problem = build_problem(config)
    predicted = load_reference(prediction_path)
    _check_prediction(prediction_path, predicted, config)
    ref = problem.reference(config["options"].get("resolution"))
    if predicted.params.get("reference_hash") not in (None, ref.hash):
        raise ValueError(f"{prediction_path} was compared with another reference (hash "
                         f"{predicted.params.get('reference_hash')}) than {problem.name}'s ({ref.hash}).")
    if ref.grid_shape != predicted.grid_shape or ref.layout != predicted.layout:
        raise ValueError(f"the reference of {problem.name} is on the {ref.layout} {ref.grid_shape}, {prediction_path} "
                         f"on the {predicted.layout} {predicted.grid_shape}; the reference was recomputed differently "
                         "since the run.")
    path = folder / f"{problem.name}_fields{FORMATS[fmt]}" if path is None else Path(path)
    if fmt == "xdmf" and path.with_suffix(".h5").resolve() == prediction_path.resolve():
        raise ValueError(f"{path}: its XDMF data file {path.with_suffix('.h5')} would replace the run's "
                         "prediction.h5; choose another name.")
    return export_fields(predicted.fields, ref, path, fmt)
