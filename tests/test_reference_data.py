"""A reference from data (issue 31): ReferenceField.from_arrays / from_file on a grid or
at scattered points, the provenance they record, and everything that consumes a
reference (evaluate, the HDF5 store, figures, export, check_problem, train, the CLI)."""
from __future__ import annotations

import hashlib
import json
import math

import h5py
import numpy as np
import pytest
import torch

from pinn_sine import sampling, train
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import PROBLEMS, FunctionNet, Problem, Term, check_problem, unregister_problem
from pinn_sine.validation import evaluate, load_reference, save_reference
from pinn_sine.validation.reference import ReferenceField, arrays_digest
from pinn_sine.validation.store import ReferenceFileError, reference_with_info


def u_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x) * np.sin(np.pi * y)


def u_net(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:2])


def exact_net() -> FunctionNet:
    """u as a module whose one (unused) parameter is float64: predict() evaluates a net in
    its parameters' dtype, so the errors of an exact net are ~0 in float64."""
    net = FunctionNet(u_net)
    net.anchor = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
    return net


def grid_arrays(nx: int = 9, ny: int = 7):
    x = np.linspace(0.0, 1.0, nx) ** 1.5  # a rectilinear, non-uniform grid
    y = np.linspace(0.0, 1.0, ny)
    X, Y = np.meshgrid(x, y, indexing="ij")
    return {"x": x, "y": y}, {"u": u_of(X, Y)}


def scattered_arrays(n: int = 50, seed: int = 0):
    pts = np.random.default_rng(seed).uniform(0.0, 1.0, (n, 2))
    return dict(zip(("x", "y"), pts.T)), {"u": u_of(pts[:, 0], pts[:, 1])}


# ----- from_arrays ---------------------------------------------------------------------------------
def test_from_arrays_grid_records_its_provenance():
    coords, fields = grid_arrays()
    ref = ReferenceField.from_arrays(coords, fields, source="a peer's solver")
    assert ref.layout == "grid" and not ref.scattered and ref.grid_shape == (9, 7)
    assert ref.solver == "data" and ref.order == 0 and ref.spacing == {}
    prov = ref.provenance
    assert prov["source"] == "arrays" and prov["layout"] == "grid" and prov["shape"] == [9, 7]
    assert prov["grid"] == {"x": [0.0, 1.0, 9], "y": [0.0, 1.0, 7]} and prov["description"] == "a peer's solver"
    assert prov["sha256"] == arrays_digest(ref.coords, ref.fields)
    # the points in C order of the grid, as every grid reference
    np.testing.assert_array_equal(ref.points()[:, 0], np.repeat(coords["x"], 7))
    changed = {"u": fields["u"].copy()}
    changed["u"][3, 2] += 1e-12
    assert ReferenceField.from_arrays(coords, changed).provenance["sha256"] != prov["sha256"]


def test_from_arrays_scattered():
    coords, fields = scattered_arrays()
    mask = coords["x"] > 0.2
    ref = ReferenceField.from_arrays(coords, fields, layout="scattered", mask=mask)
    assert ref.scattered and ref.grid_shape == (50,) and ref.out_dim == 1
    np.testing.assert_array_equal(ref.points(), np.stack([coords["x"], coords["y"]], axis=1))
    prov = ref.provenance
    assert prov["layout"] == "scattered" and prov["shape"] == [50] and prov["points"]["n"] == 50
    assert prov["points"]["bounds"]["x"] == [coords["x"].min(), coords["x"].max()]
    assert prov["sha256"] == arrays_digest(ref.coords, ref.fields, mask)
    assert prov["sha256"] != ReferenceField.from_arrays(coords, fields, layout="scattered").provenance["sha256"]


@pytest.mark.parametrize("coords, fields, layout, match", [
    ({"x": [0.0, 0.5, 0.5, 1.0]}, {"u": np.zeros(4)}, "grid",
     r"coordinate 'x' is not strictly increasing \(x\[1\]=0.5, x\[2\]=0.5\); sort the axis"),
    ({"x": [1.0, 0.0]}, {"u": np.zeros(2)}, "grid", r"not strictly increasing .* or give the points with "
                                                    r"layout='scattered'"),
    ({"x": np.linspace(0, 1, 4), "y": np.linspace(0, 1, 3)}, {"u": np.zeros((3, 4))}, "grid",
     r"field 'u' has shape \(3, 4\); the grid \('x', 'y'\) need \(4, 3\)"),
    ({"x": np.linspace(0, 1, 4), "y": np.linspace(0, 1, 4)}, {"u": np.zeros(4)}, "grid",
     r"scattered points are given with layout='scattered'"),
    ({"x": np.zeros(4), "y": np.zeros(3)}, {"u": np.zeros(4)}, "scattered",
     r"scattered points need coordinates of one length n"),
    ({"x": np.zeros(4), "y": np.zeros(4)}, {"u": np.zeros(5)}, "scattered",
     r"field 'u' has shape \(5,\); the points need \(4,\)"),
    ({"x": np.zeros(3), "y": np.zeros(3)}, {"u": [1.0, np.nan, 2.0]}, "scattered",
     r"field 'u' has 1 non-finite values \(nan or inf\) of 3, the first at index \(1,\); .*drop those rows"),
    ({"x": np.linspace(0, 1, 3)}, {"u": [1.0, np.inf, 2.0]}, "grid",
     r"non-finite .* give the known values as scattered points"),
    ({"x": [0.0, np.nan, 1.0], "y": np.zeros(3)}, {"u": np.zeros(3)}, "scattered",
     r"coordinate 'x' has 1 non-finite values"),
    ({"x": np.linspace(0, 1, 3)}, {"u": np.zeros(3, dtype=complex)}, "grid", r"field 'u' is complex; .*u_real"),
    ({"x": np.linspace(0, 1, 3)}, {"u": np.zeros(3)}, "points", r'Invalid layout "points"'),
    ({"x": np.zeros((3, 2))}, {"u": np.zeros(3)}, "scattered", r"coordinate 'x' has shape \(3, 2\)"),
])
def test_from_arrays_errors(coords, fields, layout, match):
    with pytest.raises(ValueError, match=match):
        ReferenceField.from_arrays(coords, fields, layout=layout)


def test_from_arrays_mask_and_attrs_errors():
    coords, fields = grid_arrays()
    with pytest.raises(ValueError, match="mask has dtype float64; give a boolean array"):
        ReferenceField.from_arrays(coords, fields, mask=np.ones((9, 7)))
    with pytest.raises(ValueError, match=r"mask has shape \(7, 9\), the fields \(9, 7\)"):
        ReferenceField.from_arrays(coords, fields, mask=np.ones((7, 9), dtype=bool))
    with pytest.raises(ValueError, match=r"attrs\['provenance'\] is set by from_arrays/from_file"):
        ReferenceField.from_arrays(coords, fields, attrs={"provenance": {}})


# ----- from_file ------------------------------------------------------------------------------------
def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_from_file_npz_grid_and_scattered(tmp_path):
    coords, fields = grid_arrays()
    path = tmp_path / "peer.npz"
    np.savez(path, X=coords["x"], y=coords["y"], u=fields["u"], inside=np.ones((9, 7), dtype=np.uint8))
    ref = ReferenceField.from_file(path, coords={"x": "X", "y": "y"}, fields=["u"], mask="inside")
    assert tuple(ref.coords) == ("x", "y") and ref.grid_shape == (9, 7) and ref.mask.dtype == np.bool_
    np.testing.assert_array_equal(ref.fields["u"], fields["u"])
    prov = ref.provenance
    assert prov["source"] == "file" and prov["file"] == "peer.npz" and prov["format"] == "npz"
    assert prov["sha256"] == sha(path) and prov["bytes"] == path.stat().st_size
    assert prov["layout"] == "grid" and prov["shape"] == [9, 7]

    sc, sf = scattered_arrays()
    path2 = tmp_path / "cloud.npz"
    np.savez(path2, x=sc["x"], y=sc["y"], u=sf["u"])
    cloud = ReferenceField.from_file(path2, coords=["x", "y"], fields="u", layout="scattered")
    assert cloud.scattered and cloud.grid_shape == (50,) and cloud.provenance["sha256"] == sha(path2)
    sf["u"][0] += 1.0
    np.savez(path2, x=sc["x"], y=sc["y"], u=sf["u"])  # other data: another digest
    assert ReferenceField.from_file(path2, coords=["x", "y"], fields="u", layout="scattered"
                                    ).provenance["sha256"] != cloud.provenance["sha256"]


def test_from_file_csv_digest_changes_with_one_byte(tmp_path):
    sc, sf = scattered_arrays(n=20)
    path = tmp_path / "measured.csv"
    rows = ["x,y,u"] + [",".join(repr(float(v)) for v in row) for row in zip(sc["x"], sc["y"], sf["u"])]
    path.write_text("\n".join(rows) + "\n")
    ref = ReferenceField.from_file(path, coords=["x", "y"], fields=["u"], source="sensor array B")
    assert ref.scattered and ref.grid_shape == (20,)
    np.testing.assert_array_equal(ref.points(), np.stack([sc["x"], sc["y"]], axis=1))
    np.testing.assert_array_equal(ref.fields["u"], sf["u"])
    prov = ref.provenance
    assert prov["format"] == "csv" and prov["sha256"] == sha(path) and prov["description"] == "sensor array B"
    data = bytearray(path.read_bytes())
    k = data.index(b"\n") + 1  # the first digit of the first x
    data[k + 2] = ord("9") if data[k + 2] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    edited = ReferenceField.from_file(path, coords=["x", "y"], fields=["u"])
    assert edited.provenance["sha256"] == sha(path) != prov["sha256"]
    assert edited.coords["x"][0] != ref.coords["x"][0]


def test_from_file_h5_named_datasets_and_own_files(tmp_path):
    coords, fields = grid_arrays()
    path = tmp_path / "comsol.h5"
    with h5py.File(path, "w") as f:
        f["grid/x"], f["grid/y"], f["solution/u"] = coords["x"], coords["y"], fields["u"]
    ref = ReferenceField.from_file(path, coords={"x": "grid/x", "y": "grid/y"}, fields={"u": "solution/u"})
    assert ref.grid_shape == (9, 7) and ref.provenance["format"] == "h5" and ref.provenance["sha256"] == sha(path)
    np.testing.assert_array_equal(ref.fields["u"], fields["u"])

    # one of our own reference files: read and checked by load_reference, its facts kept
    own = ReferenceField.from_arrays(coords, fields, problem="somewhere", params={"a": 1})
    own_path = save_reference(own, tmp_path / "own.h5")
    back = ReferenceField.from_file(own_path, problem="mine")
    assert back.problem == "mine" and back.params == {} and back.solver == "data"
    assert back.provenance["sha256"] == sha(own_path) and back.provenance["stored_problem"] == "somewhere"
    assert back.provenance["stored_params_hash"] == own.hash
    np.testing.assert_array_equal(back.fields["u"], fields["u"])
    with pytest.raises(ValueError, match=r"is a pinn_sine reference file with the fields \['u'\]; leave fields out"):
        ReferenceField.from_file(own_path, fields=["v"])
    with h5py.File(own_path, "r+") as f:  # an edited file is refused as load_reference refuses it
        f["u"][0, 0] = 5.0
    with pytest.raises(ReferenceFileError, match="digest mismatch"):
        ReferenceField.from_file(own_path)


def test_from_file_errors(tmp_path):
    path = tmp_path / "peer.npz"
    np.savez(path, x=np.linspace(0, 1, 3), u=np.zeros(3))
    with pytest.raises(ValueError, match=r"no array named 'y', 'v'; the file has \['u', 'x'\]"):
        ReferenceField.from_file(path, coords=["x", "y"], fields=["v"])
    with pytest.raises(ValueError, match=r"name the coords to read, e.g. coords=\['x', 'y'\]"):
        ReferenceField.from_file(path, fields=["u"])
    other = tmp_path / "peer.dat"
    other.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=r"unknown data format '.dat'; .*pass format="):
        ReferenceField.from_file(other, coords=["x"], fields=["u"])
    assert ReferenceField.from_file(other, format="npz", coords=["x"], fields=["u"]).grid_shape == (3,)
    with pytest.raises(ValueError, match=r'Invalid format "mat". Must be one of'):
        ReferenceField.from_file(other, format="mat", coords=["x"], fields=["u"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReferenceField.from_file(tmp_path / "none.npz", coords=["x"], fields=["u"])
    table = tmp_path / "t.csv"
    table.write_text("x,u\n0.0,1.0\n0.5,oops\n")
    with pytest.raises(ValueError, match=r"line 3, column 'u': 'oops' is not a number"):
        ReferenceField.from_file(table, coords=["x"], fields=["u"])
    with pytest.raises(ValueError, match=r"a .csv file is read as scattered points"):
        ReferenceField.from_file(table, coords=["x"], fields=["u"], layout="grid")
    table.write_text("x,u\n0.0,1.0\n0.5,nan\n")
    with pytest.raises(ValueError, match=r"t.csv: field 'u' has 1 non-finite values .* drop those rows"):
        ReferenceField.from_file(table, coords=["x"], fields=["u"])
    with pytest.raises(ValueError, match=r"no array named 'v'; the file has \['x', 'u'\]"):
        ReferenceField.from_file(table, coords=["x"], fields=["v"])


# ----- the HDF5 store ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["grid", "scattered"])
def test_hdf5_round_trip_keeps_layout_and_provenance(tmp_path, layout):
    coords, fields = grid_arrays() if layout == "grid" else scattered_arrays()
    mask = np.ones(next(iter(fields.values())).shape, dtype=bool)
    mask.flat[0] = False
    ref = ReferenceField.from_arrays(coords, fields, layout=layout, mask=mask, problem="p", params={"k": 2})
    path = save_reference(ref, tmp_path / "r.h5")
    back = load_reference(path, expect_hash=ref.hash)
    assert back.layout == layout and back.provenance == ref.provenance and back.grid_shape == ref.grid_shape
    np.testing.assert_array_equal(back.mask, mask)
    for name in ref.coords:
        np.testing.assert_array_equal(back.coords[name], ref.coords[name])
    np.testing.assert_array_equal(back.fields["u"], ref.fields["u"])
    with h5py.File(path, "r") as f:
        if layout == "scattered":  # one dimension, the point index; x, y along it (xarray: coordinates)
            assert f["point"].shape == (50,) and f["u"].attrs["coordinates"] == "x y"
            assert "from arrays" in f.attrs["description"] and "50 scattered points" in f.attrs["description"]
    with h5py.File(path, "r+") as f:  # the provenance is covered by the digest
        attrs = json.loads(f.attrs["attrs_json"])
        attrs["provenance"]["sha256"] = "0" * 64
        f.attrs["attrs_json"] = json.dumps(attrs, sort_keys=True)
    with pytest.raises(ReferenceFileError, match="digest mismatch"):
        load_reference(path)


# ----- evaluate --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["grid", "scattered"])
def test_evaluate_on_both_layouts(layout):
    coords, fields = grid_arrays() if layout == "grid" else scattered_arrays()
    ref = ReferenceField.from_arrays(coords, fields, layout=layout)
    net = exact_net()
    errors = evaluate(net, ref)
    assert errors["rel_l2"] < 1e-14 and errors["max_abs"] < 1e-14
    # a perturbed reference: the errors by hand
    delta = np.random.default_rng(1).normal(0, 1e-3, fields["u"].shape)
    perturbed = ReferenceField.from_arrays(coords, {"u": fields["u"] + delta}, layout=layout)
    errors = evaluate(net, perturbed)
    target = fields["u"] + delta
    assert errors["rel_l2"] == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(target), rel=1e-10)
    assert errors["max_abs"] == pytest.approx(np.abs(delta).max(), rel=1e-10)
    # over a mask: only the masked points count
    mask = np.zeros(fields["u"].shape, dtype=bool)
    mask.flat[::3] = True
    masked = ReferenceField.from_arrays(coords, {"u": target}, layout=layout, mask=mask)
    assert evaluate(net, masked)["rel_l2"] == pytest.approx(
        np.linalg.norm(delta[mask]) / np.linalg.norm(target[mask]), rel=1e-10)


def test_scattered_reference_with_time_has_no_per_t_errors():
    pts = np.random.default_rng(2).uniform(0, 1, (30, 2))
    ref = ReferenceField.from_arrays({"t": pts[:, 0], "x": pts[:, 1]}, {"u": u_of(pts[:, 0], pts[:, 1])},
                                     layout="scattered")
    errors = evaluate(exact_net(), ref)
    assert "rel_l2_per_t" not in errors and errors["rel_l2"] < 1e-14


# ----- figures and export ----------------------------------------------------------------------------
def test_field_comparison_draws_scattered_points(tmp_path):
    from pinn_sine.plots import _field_comparison_figure, field_comparison

    coords, fields = scattered_arrays()
    ref = ReferenceField.from_arrays(coords, fields, layout="scattered")
    pred = {"u": fields["u"] + 1e-3}
    fig = _field_comparison_figure(pred, ref, exact=u_net)
    assert len(fig.axes[0].collections) == 1 and fig.axes[0].collections[0].get_offsets().shape == (50, 2)
    assert field_comparison(pred, ref, tmp_path / "f.png").stat().st_size > 0
    line = ReferenceField.from_arrays({"x": coords["x"]}, fields, layout="scattered")
    with pytest.raises(ValueError, match=r"draws scattered points of two inputs .* got the inputs \['x'\]"):
        field_comparison({"u": fields["u"]}, line, tmp_path / "g.png")


def test_export_fields_of_scattered_points_is_a_point_cloud(tmp_path):
    meshio = pytest.importorskip("meshio")
    from pinn_sine.export import export_fields

    pts = np.random.default_rng(3).uniform(0, 1, (40, 3))
    ref = ReferenceField.from_arrays(dict(zip(("t", "x", "y"), pts.T)), {"u": pts[:, 1] + pts[:, 2]},
                                     layout="scattered")
    pred = {"u": ref.fields["u"] + 0.5}
    for fmt in ("vtk", "xdmf"):
        [path, *_] = export_fields(pred, ref, tmp_path / f"cloud.{fmt}", fmt)
        mesh = meshio.read(path)
        assert mesh.points.shape == (40, 3) and mesh.cells[0].type == "vertex"
        np.testing.assert_allclose(mesh.points[:, :2], pts[:, 1:])
        np.testing.assert_allclose(mesh.point_data["error_u"].ravel(), 0.5)
        np.testing.assert_allclose(mesh.point_data["t"].ravel(), pts[:, 0])


# ----- a problem whose reference comes from a data file ------------------------------------------
class DataPoisson(Problem):
    """-Laplacian u = f on [0, 1]^2, u = 0 on the boundary, f = 2 pi^2 sin(pi x) sin(pi y);
    the reference is read from a data file (a grid .npz or a scattered .csv)."""

    name = "datapoisson"
    input_names = ("x", "y")
    bounds = ((0.0, 1.0), (0.0, 1.0))
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"), ("y", "y"))), "boundary": DerivativeSpec()}
    bad_params = ({"data": ""},)
    check_resolution = 17  # a grid problem's habit: check_problem leaves it out for data
    reference_from_data = True
    data_file = None  # set by the tests (and by the user module below)

    def __init__(self, data: str | None = None):
        data = self.data_file if data is None else data
        if not data:
            raise ValueError(f"data={data!r}: give the path of the reference data file (.npz or .csv).")
        self.data = str(data)

    def sample(self, n, generator, *, progress=1.0):
        return {"interior": sampling.box(n, self.bounds, generator),
                "boundary": sampling.box_boundary(n // 4, self.bounds, generator)}

    def terms(self):
        return (Term("pde", ("interior",), "pde", self.pde),
                Term("boundary", ("boundary",), "boundary", lambda jets, batch: jets["boundary"].u))

    def pde(self, jets, batch):
        x = batch["interior"]
        f = 2 * math.pi ** 2 * torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:])
        return (jets["interior"].laplacian(("x", "y")) + f) / (2 * math.pi ** 2)

    def exact(self, x):
        return u_net(x)

    def params(self):
        return {"data": self.data}

    def compute_reference(self, resolution):
        kind = {"coords": ["x", "y"], "fields": ["u"]}
        return ReferenceField.from_file(self.data, **kind, source="test data")


@pytest.fixture(params=["grid", "scattered"])
def data_file(request, tmp_path):
    if request.param == "grid":
        coords, fields = grid_arrays(17, 17)
        path = tmp_path / "ref.npz"
        np.savez(path, **coords, **fields)
    else:
        coords, fields = scattered_arrays(n=200)
        path = tmp_path / "ref.csv"
        rows = ["x,y,u"] + [",".join(repr(float(v)) for v in row)
                            for row in zip(coords["x"], coords["y"], fields["u"])]
        path.write_text("\n".join(rows) + "\n")
    return path


def test_a_data_reference_passes_check_problem_and_trains(data_file):
    problem = DataPoisson(data_file)
    assert "reference" in check_problem(problem)
    ref = problem.reference()
    assert ref.problem == "datapoisson" and "resolution" not in ref.params
    assert ref.params == {"data": str(data_file), "data_sha256": sha(data_file)}
    assert ref.provenance["file"] == data_file.name and ref.provenance["sha256"] == sha(data_file)
    assert ref.layout == ("grid" if data_file.suffix == ".npz" else "scattered")
    with pytest.raises(ValueError, match=r"read from data on its own points .* resolution=33 cannot be honoured"):
        problem.reference(33)
    again, info = reference_with_info(problem)
    assert info.source == "computed" and "read from data" in info.reason and again.hash == ref.hash
    assert evaluate(exact_net(), ref)["rel_l2"] < 1e-14
    net = MLP(2, 1, width=8, depth=1, activation=Sine(), first_omega=2.0, seed=0)
    result = train(problem, net, steps=3, batch=32, reference=ref, eval_every=2, progress=False)
    assert np.isfinite(result.final["rel_l2"])
    assert result.final["rel_l2"] == pytest.approx(evaluate(net, ref)["rel_l2"], rel=1e-6)


def test_reference_from_a_file_needs_the_flag(data_file):
    class Forgot(DataPoisson):
        name = "forgot"
        reference_from_data = False

    with pytest.raises(TypeError, match="returned a field read from the file .* set reference_from_data = True"):
        Forgot(data_file).reference(17, cache=False)

    class NoProvenance(DataPoisson):
        name = "noprovenance"

        def compute_reference(self, resolution):
            ref = super().compute_reference(resolution)
            return ReferenceField(problem="", params={}, coords=ref.coords, fields=ref.fields, solver="mine",
                                  order=0, spacing={}, attrs={"layout": ref.layout})

    with pytest.raises(TypeError, match="without the provenance of its data; .* ReferenceField.from_file"):
        NoProvenance(data_file).reference()


MODULE = '''
import importlib.util
from pinn_sine.problems import PROBLEMS, register_problem
spec = importlib.util.spec_from_file_location("reference_data_tests", {tests!r})
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
tests.DataPoisson.data_file = {data!r}
if "datapoisson" not in PROBLEMS:
    register_problem(tests.DataPoisson)
'''


def test_cli_solve_and_export_with_a_data_reference(tmp_path, data_file, capsys):
    pytest.importorskip("meshio")
    import meshio

    from pinn_sine import cli

    module = tmp_path / "userprobs.py"
    module.write_text(MODULE.format(tests=__file__, data=str(data_file)))
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["--module", str(module), "solve", "datapoisson", "--steps", "2", "--width", "8",
                         "--depth", "1", "--batch", "32", "--quiet", "--out", str(out)]) == 0
        # (the module is imported once per process: the problem stays registered)
        with pytest.raises(SystemExit, match="--resolution 33: .*cannot be honoured"):
            cli.main(["solve", "datapoisson", "--steps", "2", "--width", "8", "--depth", "1",
                      "--batch", "32", "--resolution", "33", "--quiet", "--out", str(tmp_path / "bad")])
        metrics = json.loads((out / "metrics.json").read_text())
        assert np.isfinite(metrics["rel_l2"]) and (out / "field.png").exists()
        predicted = load_reference(out / "prediction.h5")
        ref = DataPoisson(data_file).reference()
        assert predicted.layout == ref.layout and predicted.grid_shape == ref.grid_shape
        assert metrics["reference_hash"] == ref.hash
        assert cli.main(["export", str(out), "--format", "vtk"]) == 0
        mesh = meshio.read(out / "datapoisson_fields.vtk")
        n = int(np.prod(ref.grid_shape))
        assert mesh.points.shape == (n, 3)
        assert mesh.cells[0].type == ("vertex" if ref.scattered else "quad")
    finally:
        torch.set_num_threads(threads)
        if "datapoisson" in PROBLEMS:
            unregister_problem("datapoisson")


def test_run_config_records_a_scattered_reference_by_its_point_count():
    from pinn_sine.nets import build_net
    from pinn_sine.optim import Adam
    from pinn_sine.problems import Poisson2D
    from pinn_sine.runs import run_config

    coords, fields = scattered_arrays()
    ref = ReferenceField.from_arrays(coords, fields, layout="scattered")
    problem = Poisson2D()
    config = run_config(problem=problem, problem_options={}, net=build_net(problem, "siren", width=4, depth=1),
                        stages=[Adam(1)], options={}, reference=ref, argv=[])
    assert config["reference"]["grid"] == {"points": 50}
