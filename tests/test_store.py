"""HDF5 reference store: round trip, layout, defensive reads and the hash-keyed cache."""
from __future__ import annotations

import importlib.util
import json
import os

import h5py
import numpy as np
import pytest

from pinn_sine.validation import ReferenceField, ReferenceFileError, cache_dir, load_reference, save_reference
from pinn_sine.validation.store import SCHEMA_VERSION, cached_reference


def _ref(params=None, *, mask=True, seed=0) -> ReferenceField:
    rng = np.random.default_rng(seed)
    x, y = np.linspace(0.0, 1.0, 5), np.linspace(-2.0, 2.0, 7)
    m = None
    if mask:
        m = np.zeros((5, 7), dtype=bool)
        m[1:4, 2:6] = True
    return ReferenceField(problem="demo", params=params or {"a": 1.5, "name": "z", "list": [1, 2]},
                          coords={"x": x, "y": y}, fields={"u": rng.standard_normal((5, 7))},
                          solver="fd5-dst", order=2, spacing={"x": 0.25, "y": 2 / 3}, mask=m,
                          attrs={"image": True, "data_range": 1.0})


def _assert_same(a: ReferenceField, b: ReferenceField):
    assert (a.problem, a.params, a.solver, a.order, a.spacing, a.attrs) == \
        (b.problem, b.params, b.solver, b.order, b.spacing, b.attrs)
    assert list(a.coords) == list(b.coords) and list(a.fields) == list(b.fields)
    for k in a.coords:
        np.testing.assert_array_equal(a.coords[k], b.coords[k])
    for k in a.fields:
        np.testing.assert_array_equal(a.fields[k], b.fields[k])
    if a.mask is None:
        assert b.mask is None
    else:
        assert b.mask.dtype == bool
        np.testing.assert_array_equal(a.mask, b.mask)


@pytest.mark.parametrize("mask", [True, False])
def test_roundtrip(tmp_path, mask):
    ref = _ref(mask=mask)
    path = save_reference(ref, tmp_path / "sub" / "ref.h5")
    back = load_reference(path, expect_hash=ref.hash)
    _assert_same(ref, back)


def test_roundtrip_three_coords_and_channels(tmp_path):
    rng = np.random.default_rng(1)
    ref = ReferenceField(problem="demo3", params={"k": 2}, coords={"t": np.arange(3.0), "x": np.arange(4.0),
                                                                    "y": np.arange(2.0)},
                         fields={"u_real": rng.random((3, 4, 2)), "rgb": rng.random((3, 4, 2, 3))},
                         solver="s", order=2, spacing={"t": 1.0, "x": 1.0, "y": 1.0})
    _assert_same(ref, load_reference(save_reference(ref, tmp_path / "r.h5")))


def test_coordinates_are_dimension_scales(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    with h5py.File(path, "r") as f:
        for name in ("x", "y"):
            assert h5py.h5ds.is_scale(f[name].id)
        for ds in ("u", "mask"):
            assert [list(f[ds].dims[k].keys()) for k in range(2)] == [["x"], ["y"]], ds
            np.testing.assert_array_equal(f[ds].dims[0][0][()], f["x"][()])
        assert int(f.attrs["schema_version"]) == SCHEMA_VERSION


@pytest.mark.skipif(not (importlib.util.find_spec("h5netcdf") or importlib.util.find_spec("netCDF4")),
                    reason="xarray needs h5netcdf or netCDF4 to open HDF5; the h5py test above checks "
                           "the dimension scales xarray relies on")
def test_xarray_opens_file(tmp_path):
    import xarray as xr

    ref = _ref()
    path = save_reference(ref, tmp_path / "ref.h5")
    engine = "h5netcdf" if importlib.util.find_spec("h5netcdf") else "netcdf4"
    with xr.open_dataset(path, engine=engine) as ds:
        assert ds["u"].dims == ("x", "y")
        np.testing.assert_array_equal(ds["x"].values, ref.coords["x"])
        np.testing.assert_array_equal(ds["u"].values, ref.fields["u"])


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


def test_edited_params_detected(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")

    def edit(f):
        params = json.loads(f.attrs["params_json"])
        params["a"] = 2.5
        f.attrs["params_json"] = json.dumps(params, sort_keys=True)

    _edit(path, edit)
    with pytest.raises(ReferenceFileError, match="hash"):
        load_reference(path)


def test_wrong_schema_version(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    _edit(path, lambda f: f.attrs.__setitem__("schema_version", SCHEMA_VERSION + 1))
    with pytest.raises(ReferenceFileError, match=f"schema version {SCHEMA_VERSION + 1}"):
        load_reference(path)


def test_missing_schema_version(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    _edit(path, lambda f: f.attrs.__delitem__("schema_version"))
    with pytest.raises(ReferenceFileError, match="schema_version"):
        load_reference(path)


def test_modified_data_detected(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")

    def edit(f):
        f["u"][2, 3] = f["u"][2, 3] + 1e-9

    _edit(path, edit)
    with pytest.raises(ReferenceFileError, match="digest"):
        load_reference(path)


def test_modified_mask_detected(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    _edit(path, lambda f: f["mask"].__setitem__((0, 0), 1))
    with pytest.raises(ReferenceFileError, match="digest"):
        load_reference(path)


def test_other_params_rejected(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    with pytest.raises(ReferenceFileError, match="other parameters"):
        load_reference(path, expect_hash=_ref({"a": 0}).hash)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_file(tmp_path, damage):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(blob)))
    else:
        path.write_bytes(b"")
    with pytest.raises(ReferenceFileError, match=str(path.name)):
        load_reference(path)


def test_failed_write_is_atomic(tmp_path):
    good = _ref()
    path = save_reference(good, tmp_path / "ref.h5")
    before = path.read_bytes()
    bad = _ref()
    bad.attrs["unserialisable"] = object()  # json.dumps fails half-way through the write
    with pytest.raises(TypeError):
        save_reference(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.h5"]


def test_no_tmp_files_left(tmp_path):
    for k in range(3):
        save_reference(_ref(seed=k), tmp_path / "ref.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.h5"]


# ----- cache ----------------------------------------------------------------------------
class _Compute:
    def __init__(self, params):
        self.params, self.calls = params, 0

    def __call__(self):
        self.calls += 1
        return _ref(self.params, seed=self.calls)


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PINN_SINE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_cached_reference_reuses_valid_file():
    params = {"a": 1}
    compute = _Compute(params)
    first = cached_reference("demo", params, compute)
    files = list(cache_dir().glob("demo-*.h5"))
    assert compute.calls == 1 and len(files) == 1
    second = cached_reference("demo", params, compute)
    assert compute.calls == 1
    _assert_same(first, second)
    # different parameters -> a different file
    cached_reference("demo", {"a": 2}, _Compute({"a": 2}))
    assert len(list(cache_dir().glob("demo-*.h5"))) == 2
    assert not list(cache_dir().glob("*.tmp"))


@pytest.mark.parametrize("damage", ["garbage", "data"])
def test_cached_reference_recomputes_bad_file(damage):
    params = {"a": 1}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    (path,) = cache_dir().glob("demo-*.h5")
    if damage == "garbage":
        path.write_bytes(b"not an hdf5 file" * 10)
    else:
        _edit(path, lambda f: f["u"].__setitem__((0, 0), 42.0))
    with pytest.warns(RuntimeWarning, match="discarding cached reference"):
        again = cached_reference("demo", params, compute)
    assert compute.calls == 2
    # the recomputed field (seed 2) replaced the bad file, which now loads cleanly
    _assert_same(again, load_reference(path))
    cached_reference("demo", params, compute)
    assert compute.calls == 2


def test_cache_false_writes_nothing():
    compute = _Compute({"a": 1})
    cached_reference("demo", {"a": 1}, compute, cache=False)
    cached_reference("demo", {"a": 1}, compute, cache=False)
    assert compute.calls == 2
    assert not cache_dir().exists() or not any(cache_dir().iterdir())


def test_cached_reference_checks_computed_params():
    with pytest.raises(RuntimeError, match="hash"):
        cached_reference("demo", {"a": 1}, _Compute({"a": 99}))


def test_cache_never_in_home():
    assert os.environ["PINN_SINE_CACHE"] == str(cache_dir())
    assert not str(cache_dir()).startswith(os.path.expanduser("~/.cache"))


# ----- issue 13: accuracy, provenance and a cache that never crashes ---------------------
def _field_with(**attrs) -> ReferenceField:
    ref = _ref()
    return ReferenceField(problem=ref.problem, params=ref.params, coords=ref.coords, fields=ref.fields,
                          solver=ref.solver, order=ref.order, spacing=ref.spacing, mask=ref.mask, attrs=attrs)


def test_error_estimate_round_trips(tmp_path):
    ref = _field_with(error_estimate=np.float32(3.5e-5), error_method="richardson")
    assert ref.error_estimate == pytest.approx(3.5e-5) and ref.error_method == "richardson"
    back = load_reference(save_reference(ref, tmp_path / "ref.h5"))
    assert isinstance(back.error_estimate, float) and back.error_estimate == pytest.approx(3.5e-5, rel=1e-7)
    assert back.error_method == "richardson"
    plain = load_reference(save_reference(_field_with(), tmp_path / "plain.h5"))
    assert plain.error_estimate is None and plain.error_method is None


@pytest.mark.parametrize("attrs, match", [
    ({"error_estimate": -1e-3}, r"error_estimate'\]=-0.001: expected a finite"),
    ({"error_estimate": float("nan")}, "expected a finite"),
    ({"error_estimate": "small"}, "expected a finite"),
    ({"error_method": "guess"}, r"error_method'\]='guess': expected one of \['exact', 'richardson'"),
    ({"units": "m"}, r"attrs\['units'\]='m': expected a dict"),
])
def test_bad_accuracy_attrs_rejected_at_construction(attrs, match):
    with pytest.raises(ValueError, match=match):
        _field_with(**attrs)


def test_evaluate_against_exact_solution():
    import torch

    from pinn_sine.problems import FunctionNet
    from pinn_sine.validation import evaluate

    def exact(x):
        return torch.sin(torch.pi * x[:, :1]) * torch.cos(x[:, 1:])

    x, y = np.linspace(0.0, 1.0, 9), np.linspace(-1.0, 1.0, 11)
    u = np.sin(np.pi * x)[:, None] * np.cos(y)[None, :]
    wrong = u + 1e-3 * np.outer(x * (1 - x), np.ones_like(y))  # a reference with a known error
    ref = ReferenceField(problem="demo", params={}, coords={"x": x, "y": y}, fields={"u": wrong}, solver="s",
                         order=2, spacing={"x": 0.125, "y": 0.2}, attrs={"error_estimate": 1e-3,
                                                                        "error_method": "exact"})
    m = evaluate(FunctionNet(exact), ref, prediction={"u": u}, exact=exact)
    assert m["rel_l2_exact"] < 1e-14 and m["max_abs_exact"] < 1e-14
    assert m["rel_l2"] == pytest.approx(np.linalg.norm(wrong - u) / np.linalg.norm(wrong), rel=1e-12)
    assert m["reference_error"] == 1e-3
    assert "rel_l2_exact" not in evaluate(FunctionNet(exact), ref, prediction={"u": u})
    with pytest.raises(ValueError, match=r"the exact solution gives outputs of shape \(99, 2\)"):
        evaluate(FunctionNet(exact), ref, prediction={"u": u}, exact=lambda x: torch.cat([exact(x)] * 2, 1))


def test_evaluate_with_a_problems_exact_method():
    from pinn_sine.problems import FunctionNet, Poisson2D
    from pinn_sine.validation import evaluate

    problem = Poisson2D()
    ref = problem.reference(17, cache=False)
    m = evaluate(FunctionNet(problem.exact), ref, exact=problem.exact)
    assert m["rel_l2_exact"] < 1e-6  # float32 prediction (FunctionNet has no parameters) vs float64 exact
    assert 1e-5 < m["rel_l2"] < 0.1  # the FD error of a 17 x 17 grid


def test_solver_version_written(tmp_path):
    from pinn_sine.validation.fd.versions import SOLVER_VERSIONS
    from pinn_sine.validation.store import read_metadata

    assert read_metadata(save_reference(_ref(), tmp_path / "a.h5")).solver_version == SOLVER_VERSIONS["fd5-dst"] >= 1
    ref = _ref()
    user = ReferenceField(problem=ref.problem, params=ref.params, coords=ref.coords, fields=ref.fields,
                          solver="my-own-solver", order=2, spacing=ref.spacing)
    assert read_metadata(save_reference(user, tmp_path / "b.h5")).solver_version == 0


def test_stale_solver_version_recomputed(monkeypatch):
    from pinn_sine.validation.fd import versions

    from pinn_sine.validation import store

    # The file name carries the table's digest (test below); hold it fixed to check the
    # version stored inside the file, the second line of defence.
    monkeypatch.setattr(store, "table_digest", lambda: "fixed")
    params = {"a": 1}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    monkeypatch.setitem(versions.SOLVER_VERSIONS, "fd5-dst", versions.SOLVER_VERSIONS["fd5-dst"] + 1)
    with pytest.warns(RuntimeWarning, match="stale cached reference .*'fd5-dst' version 1, the current version "
                                            "is 2") as record:
        again = cached_reference("demo", params, compute)
    assert compute.calls == 2 and len(record) == 1
    (path,) = cache_dir().glob("demo-*.h5")
    _assert_same(again, load_reference(path))
    cached_reference("demo", params, compute)  # the rewritten file is current
    assert compute.calls == 2


@pytest.mark.parametrize("name, value, match", [
    ("order", 4, "digest"),
    ("solver", "fd5-sparse", "digest"),
    ("solver_version", 7, "digest"),
    ("spacing_json", json.dumps({"x": 0.5, "y": 2 / 3}), "digest"),
    ("attrs_json", json.dumps({}), "digest"),
    ("params_json", json.dumps({"a": 2.5, "list": [1, 2], "name": "z"}), "hash"),
    ("problem", "other", "hash"),
    ("kind", "prediction", "digest"),
    ("description", "something else", "digest"),
    ("fields", json.dumps(["mask"]), "digest"),
    ("coords", json.dumps(["y", "x"]), "unreadable content"),
    ("extra_attrs", json.dumps(3), "'extra_attrs' is 3, expected a list"),
])
def test_edited_metadata_detected(tmp_path, name, value, match):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    _edit(path, lambda f: f.attrs.__setitem__(name, value))
    with pytest.raises(ReferenceFileError, match=match):
        load_reference(path)


def test_image_flag_cannot_be_switched_on(tmp_path):
    ref = _field_with()  # not an image: evaluate would report no PSNR/SSIM
    path = save_reference(ref, tmp_path / "ref.h5")
    _edit(path, lambda f: f.attrs.__setitem__("attrs_json", json.dumps({"image": True})))
    with pytest.raises(ReferenceFileError, match="digest mismatch: the data or the metadata"):
        load_reference(path)


def test_schema_1_file_rejected_and_recomputed():
    params = {"a": 1}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    (path,) = cache_dir().glob("demo-*.h5")
    _edit(path, lambda f: f.attrs.__setitem__("schema_version", 1))
    with pytest.raises(ReferenceFileError, match=r"schema version 1 \(written by an older pinn_sine\), this "
                                                 r"package reads 2; recompute"):
        load_reference(path)
    with pytest.warns(RuntimeWarning, match="discarding cached reference.*schema version 1"):
        cached_reference("demo", params, compute)
    assert compute.calls == 2 and load_reference(path).hash == _ref(params).hash


def _cache_path(params) -> "os.PathLike":
    from pinn_sine.validation.fd.versions import table_digest
    from pinn_sine.validation.reference import params_hash

    return cache_dir() / f"demo-{params_hash('demo', params)[:16]}-{table_digest()}.h5"


def test_directory_at_cache_path():
    params = {"a": 1}
    path = _cache_path(params)
    path.mkdir(parents=True)
    with pytest.raises(ReferenceFileError, match="is a directory, expected a reference file"):
        load_reference(path)
    compute = _Compute(params)
    with pytest.warns(RuntimeWarning, match="discarding cached reference.*cannot write the reference cache") as rec:
        ref = cached_reference("demo", params, compute)
    assert len(rec) == 1 and compute.calls == 1 and ref.hash == _ref(params).hash
    assert path.is_dir()  # never removed: it may be someone's folder


@pytest.mark.parametrize("value", ["two", 2.0, np.array([2])])
def test_non_integer_schema_version(value):
    params = {"a": 1}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    path = _cache_path(params)
    _edit(path, lambda f: f.attrs.__setitem__("schema_version", value))
    with pytest.raises(ReferenceFileError, match="schema_version' is .*expected (an integer|a scalar)"):
        load_reference(path)
    with pytest.warns(RuntimeWarning, match="discarding cached reference"):
        cached_reference("demo", params, compute)
    assert compute.calls == 2
    load_reference(path)


@pytest.mark.skipif(not importlib.util.find_spec("h5netcdf"), reason="the test extras install xarray and h5netcdf")
def test_xarray_rewritten_file_rejected_and_recomputed(tmp_path):
    import shutil

    import xarray as xr

    params = {"a": 1}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    path = _cache_path(params)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds.load().to_netcdf(tmp_path / "rewritten.h5", engine="h5netcdf")
    with pytest.raises(ReferenceFileError, match="'schema_version' is an array of shape \\(1,\\).*xarray"):
        load_reference(tmp_path / "rewritten.h5")
    shutil.copy(tmp_path / "rewritten.h5", path)
    with pytest.warns(RuntimeWarning, match="discarding cached reference"):
        cached_reference("demo", params, compute)
    assert compute.calls == 2
    load_reference(path, expect_hash=_ref(params).hash)


def test_cache_pointing_at_a_file_returns_the_field(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PINN_SINE_CACHE", str(blocker))
    compute = _Compute({"a": 1})
    with pytest.warns(RuntimeWarning, match=f"cannot write the reference cache at {blocker}/demo-.*h5 "
                                            r"\(FileExistsError") as record:
        ref = cached_reference("demo", {"a": 1}, compute)
    assert len(record) == 1 and compute.calls == 1 and ref.params == {"a": 1}
    assert blocker.read_text() == ""


def test_read_only_cache_returns_the_field(monkeypatch):
    # root writes into read-only folders anyway, so the refusal is simulated where it happens
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    compute = _Compute({"a": 1})
    with pytest.warns(RuntimeWarning, match=r"cannot write the reference cache .*\(PermissionError") as record:
        cached_reference("demo", {"a": 1}, compute)
    assert len(record) == 1 and not list(cache_dir().glob("*.h5"))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    before = os.umask(umask)
    try:
        path = save_reference(_ref(), tmp_path / "ref.h5")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == mode


def test_self_explaining_metadata(tmp_path):
    path = save_reference(_ref(), tmp_path / "ref.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["kind"] == "reference"
        assert "fd5-dst (order 2) reference solution of demo" in f.attrs["description"]
        assert (f["x"].attrs["long_name"], f["x"].attrs["units"]) == ("space coordinate x", "1")
        assert (f["u"].attrs["long_name"], f["u"].attrs["units"]) == ("solution u", "1")
        assert f["mask"].attrs["description"] == "region where errors are measured"
    rng = np.random.default_rng(0)
    ref = ReferenceField(problem="demo", params={}, coords={"t": np.arange(2.0), "x": np.arange(3.0)},
                         fields={"u_real": rng.random((2, 3)), "u_imag": rng.random((2, 3))}, solver="s",
                         order=2, spacing={"t": 1.0, "x": 1.0}, mask=np.ones((2, 3), bool),
                         attrs={"mask_meaning": "the physical region inside the PML", "units": {"t": "s"}})
    with h5py.File(save_reference(ref, tmp_path / "c.h5"), "r") as f:
        assert (f["t"].attrs["long_name"], f["t"].attrs["units"], f["x"].attrs["units"]) == ("time", "s", "1")
        assert f["u_real"].attrs["long_name"] == "real part of the solution u"
        assert f["u_imag"].attrs["long_name"] == "imaginary part of the solution u"
        assert "output column 1" in f["u_imag"].attrs["description"]
        assert f["mask"].attrs["description"] == "the physical region inside the PML"


def test_prediction_files(tmp_path):
    from pinn_sine.validation.store import read_metadata

    ref = _ref()
    pred = ReferenceField(problem=ref.problem, params={"reference_hash": ref.hash, "width": 8}, coords=ref.coords,
                          fields=ref.fields, solver="pinn-siren", order=0, spacing=ref.spacing, mask=ref.mask)
    path = save_reference(pred, tmp_path / "prediction.h5", kind="prediction", description="a SIREN 8 x 1",
                          extra_attrs={"training_json": json.dumps({"steps": 6}), "rel_l2": np.float64(0.5)})
    back = load_reference(path)
    assert back.params == pred.params and back.hash != ref.hash
    meta = read_metadata(path)
    assert (meta.kind, meta.description, meta.solver_version) == ("prediction", "a SIREN 8 x 1", 0)
    assert meta.extra == {"training_json": '{"steps": 6}', "rel_l2": 0.5}
    with h5py.File(path, "r") as f:
        assert f["u"].attrs["long_name"] == "predicted solution u"
    _edit(path, lambda f: f.attrs.__setitem__("rel_l2", 0.1))
    with pytest.raises(ReferenceFileError, match="digest"):
        load_reference(path)
    with pytest.raises(ValueError, match='Invalid kind "guess". Must be one of'):
        save_reference(pred, tmp_path / "p.h5", kind="guess")
    with pytest.raises(ValueError, match="extra attribute name 'order' is empty or reserved"):
        save_reference(pred, tmp_path / "p.h5", kind="prediction", extra_attrs={"order": 3})
    with pytest.raises(TypeError, match="extra attribute 'summary' is a dict; .*json.dumps"):
        save_reference(pred, tmp_path / "p.h5", kind="prediction", extra_attrs={"summary": {}})


def test_a_prediction_is_never_served_as_a_cached_reference():
    params = {"a": 1}
    path = _cache_path(params)
    save_reference(_ref(params), path, kind="prediction")
    compute = _Compute(params)
    with pytest.warns(RuntimeWarning, match="holds a prediction, not a reference"):
        cached_reference("demo", params, compute)
    assert compute.calls == 1


class _Demo:
    """The part of a Problem that reference_with_info uses."""

    def __init__(self):
        self.compute = _Compute({"a": 1})

    def reference(self, resolution=None, *, cache=True):
        return cached_reference("demo", {"a": 1}, self.compute, cache=cache)


def test_reference_with_info():
    from pinn_sine.validation.store import reference_with_info

    demo = _Demo()
    ref, info = reference_with_info(demo)
    assert (info.source, info.stored, info.reason, info.path) == ("computed", True, "not in the cache",
                                                                  _cache_path({"a": 1}))
    ref2, info2 = reference_with_info(demo)
    assert (info2.source, info2.reason) == ("cache", None) and info2.seconds >= 0
    _assert_same(ref, ref2)
    _, info3 = reference_with_info(demo, cache=False)
    assert (info3.source, info3.path, info3.stored, info3.reason) == ("computed", None, False, "caching is off")


def test_cli_reference_reports_accuracy_and_source(capsys):
    from pinn_sine.cli import main

    assert main(["reference", "poisson2d", "--resolution", "9"]) == 0
    first = capsys.readouterr().out
    assert "error estimate: " in first and "computed in " in first and "cached at " in first
    assert main(["reference", "poisson2d", "--resolution", "9"]) == 0
    assert "loaded from the cache" in capsys.readouterr().out


def test_cli_prediction_file_says_it_is_a_prediction(tmp_path):
    from pinn_sine.cli import main
    from pinn_sine.validation.store import read_metadata

    out = tmp_path / "run"
    assert main(["solve", "poisson2d", "--steps", "2", "--lbfgs-steps", "0", "--batch", "16", "--width", "4",
                 "--depth", "1", "--resolution", "9", "--out", str(out), "--quiet"]) == 0
    (ref_path,) = cache_dir().glob("poisson2d-*.h5")
    ref = load_reference(ref_path)
    pred = load_reference(out / "prediction.h5")
    meta = read_metadata(out / "prediction.h5")
    assert meta.kind == "prediction" and "siren MLP width=4 depth=1" in meta.description
    assert pred.hash != ref.hash and pred.params["reference_hash"] == ref.hash and pred.solver == "pinn-siren"
    assert json.loads(meta.extra["training_json"])["steps"] == 2 and meta.extra["reference_solver"] == ref.solver
    assert "error_estimate" not in pred.attrs and read_metadata(ref_path).kind == "reference"


def test_a_solver_version_bump_changes_the_cache_file(monkeypatch):
    """The cache cannot know a problem's solver before it solves; the table's digest in
    the file name keeps a field of a changed solver (or of a problem that switched to
    another solver) from being served."""
    from pinn_sine.validation.fd import versions

    params = {"a": 2}
    compute = _Compute(params)
    cached_reference("demo", params, compute)
    monkeypatch.setitem(versions.SOLVER_VERSIONS, "fd5-dst", versions.SOLVER_VERSIONS["fd5-dst"] + 1)
    cached_reference("demo", params, compute)
    assert compute.calls == 2 and len(list(cache_dir().glob("demo-*.h5"))) == 2
