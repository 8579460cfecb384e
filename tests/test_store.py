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
