"""Point observations (pinn_sine.observations): arrays and files with their checks, the
HDF5 round trip and its digests, synthetic draws (noise level, seeds, the interpolated
FD reference against the exact solution), receivers, the residual, and `pinn-sine
observe`. float64 throughout."""
from __future__ import annotations

import hashlib
import json
import math

import h5py
import numpy as np
import pytest
import torch

from pinn_sine.cli import main
from pinn_sine.observations import (Observations, ObservationsFileError, interpolate_reference, line, ring, sensors,
                                    synthetic)
from pinn_sine.problems import Wave1D, Wave2D
from pinn_sine.validation import ReferenceField
from pinn_sine.validation.metrics import rel_l2


@pytest.fixture(scope="module")
def wave():
    return Wave1D()


def _arrays(n=10, c=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 2, generator=g, dtype=torch.float64),
            torch.randn(n, c, generator=g, dtype=torch.float64))


# ----- files and digests ---------------------------------------------------------------
def test_save_and_from_file_round_trip(wave, tmp_path):
    obs = synthetic(wave, 50, noise=0.01, seed=3)
    path = obs.save(tmp_path / "obs.h5")
    back = Observations.from_file(path)
    for name in ("points", "values", "noise", "truth"):
        assert torch.equal(getattr(back, name), getattr(obs, name)), name
        assert getattr(back, name).dtype == torch.float64
    assert back.input_names == ("t", "x") and back.digest() == obs.digest()
    assert back.provenance["kind"] == "file" and back.provenance["format"] == "h5"
    assert back.provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert back.provenance["stored"] == obs.provenance
    assert obs.provenance["kind"] == "synthetic" and obs.provenance["problem"] == "wave1d"
    assert obs.provenance["seed"] == 3 and obs.provenance["noise"] == 0.01 and obs.provenance["source"] == "exact"
    record = json.loads(json.dumps(back.record()))
    assert record["digest"] == obs.digest() and record["n"] == 50 and record["out_dim"] == 1
    assert record["noise"] is True and record["input_names"] == ["t", "x"]
    assert repr(obs) == "Observations(n=50, inputs=('t', 'x'), out_dim=1, noise=given, provenance='synthetic')"


def test_digest_covers_the_data_not_the_provenance():
    points, values = _arrays()
    base = Observations.from_arrays(points, values, input_names=("t", "x"))
    assert base.digest() == Observations.from_arrays(points, values, input_names=("t", "x"),
                                                     provenance={"kind": "measured", "lab": "A"}).digest()
    edited = values.clone()
    edited[4, 0] += 1e-15
    assert Observations.from_arrays(points, edited, input_names=("t", "x")).digest() != base.digest()
    assert Observations.from_arrays(points, values, input_names=("x", "y")).digest() != base.digest()
    assert Observations.from_arrays(points, values, 0.1, input_names=("t", "x")).digest() != base.digest()


def test_a_tampered_file_is_refused(wave, tmp_path):
    path = synthetic(wave, 20, noise=0.01).save(tmp_path / "obs.h5")
    with h5py.File(path, "r+") as f:
        f["values"][3, 0] = f["values"][3, 0] + 1e-3
    with pytest.raises(ObservationsFileError, match=r"obs\.h5: digest mismatch"):
        Observations.from_file(path)
    path = synthetic(wave, 20, noise=0.01).save(tmp_path / "obs2.h5")
    with h5py.File(path, "r+") as f:  # the provenance claims another seed
        prov = json.loads(f.attrs["provenance_json"])
        f.attrs["provenance_json"] = json.dumps({**prov, "seed": 7})
    with pytest.raises(ObservationsFileError, match="digest mismatch"):
        Observations.from_file(path)


def test_files_of_the_wrong_shape_kind_or_schema_are_refused(wave, tmp_path):
    path = synthetic(wave, 20).save(tmp_path / "obs.h5")
    with h5py.File(path, "r+") as f:
        points = f["points"][()]
        del f["points"]
        f["points"] = points.ravel()
    with pytest.raises(ObservationsFileError, match=r"dataset 'points' is dtype float64, shape \(40,\); expected a "
                                                    r"2-D float64"):
        Observations.from_file(path)
    path = synthetic(wave, 20).save(tmp_path / "schema.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ObservationsFileError, match="schema version 99, this package reads 1"):
        Observations.from_file(path)
    path = synthetic(wave, 20).save(tmp_path / "extra.h5")
    with h5py.File(path, "r+") as f:
        f["weights"] = np.ones(20)
    with pytest.raises(ObservationsFileError, match=r"holds the datasets \['weights'\], which an observations file "
                                                    "does not"):
        Observations.from_file(path)
    np.savez(tmp_path / "rows.npz", points=np.zeros((10, 2)), values=np.zeros((9, 1)), input_names=np.array(["t", "x"]))
    with pytest.raises(ObservationsFileError, match=r"rows\.npz: values has 9 rows, points has 10"):
        Observations.from_file(tmp_path / "rows.npz")
    np.savez(tmp_path / "cube.npz", points=np.zeros((10, 2, 2)), values=np.zeros(10), input_names=np.array(["t", "x"]))
    with pytest.raises(ObservationsFileError, match=r"points has shape \(10, 2, 2\), expected a 2-D array"):
        Observations.from_file(tmp_path / "cube.npz")
    from pinn_sine.validation import save_reference

    save_reference(wave.reference(9), tmp_path / "ref.h5")
    with pytest.raises(ObservationsFileError, match="is a pinn_sine reference file, not observations"):
        Observations.from_file(tmp_path / "ref.h5")
    (tmp_path / "obs.csv").write_text("t,x,u\n")
    with pytest.raises(ObservationsFileError, match="unknown observations format '.csv'"):
        Observations.from_file(tmp_path / "obs.csv")


def test_npz_input(tmp_path):
    points, values = _arrays(12, 2)
    np.savez(tmp_path / "named.npz", points=points.numpy(), values=values.numpy(), noise=np.array([0.1, 0.2]),
             input_names=np.array(["x", "y"]))
    obs = Observations.from_file(tmp_path / "named.npz")
    assert obs.input_names == ("x", "y") and torch.equal(obs.values, values)
    assert torch.equal(obs.noise, torch.tensor([[0.1, 0.2]], dtype=torch.float64).expand(12, 2))
    assert obs.provenance["format"] == "npz" and "stored" not in obs.provenance
    np.savez(tmp_path / "bare.npz", points=points.numpy().astype(np.float32), values=values[:, 0].numpy())
    with pytest.raises(ObservationsFileError, match="no array 'input_names'; pass input_names="):
        Observations.from_file(tmp_path / "bare.npz")
    bare = Observations.from_file(tmp_path / "bare.npz", input_names=("t", "x"))
    assert bare.points.dtype == torch.float64 and bare.values.shape == (12, 1) and bare.noise is None
    np.savez(tmp_path / "extra.npz", points=points.numpy(), values=values.numpy(), weights=np.ones(12))
    with pytest.raises(ObservationsFileError, match=r"unknown \['weights'\]"):
        Observations.from_file(tmp_path / "extra.npz", input_names=("t", "x"))


# ----- bad declarations ----------------------------------------------------------------
def test_non_finite_values_are_refused(tmp_path):
    points, values = _arrays()
    values[6, 0] = float("nan")
    with pytest.raises(ValueError, match=r"values has 1 non-finite values \(nan or inf\) in 1 of its 10 rows, the "
                                         r"first in row 6"):
        Observations.from_arrays(points, values, input_names=("t", "x"))
    np.savez(tmp_path / "nan.npz", points=points.numpy(), values=values.numpy(), input_names=np.array(["t", "x"]))
    with pytest.raises(ObservationsFileError, match=r"nan\.npz: values has 1 non-finite"):
        Observations.from_file(tmp_path / "nan.npz")
    points[2, 1] = float("inf")
    with pytest.raises(ValueError, match="points has 1 non-finite values .* first in row 2"):
        Observations.from_arrays(points, torch.zeros(10, 1), input_names=("t", "x"))


@pytest.mark.parametrize("noise, match", [
    (0.0, r"noise must be finite and > 0 .* got 0\.0"),
    (-0.1, r"noise must be finite and > 0"),
    ([[0.1]] * 9, r"noise has shape \(9, 1\), which does not broadcast to the values' \(10, 1\)"),
])
def test_bad_noise_is_refused(noise, match):
    points, values = _arrays()
    with pytest.raises(ValueError, match=match):
        Observations.from_arrays(points, values, noise, input_names=("t", "x"))


def test_bad_names_and_shapes_are_refused():
    points, values = _arrays()
    with pytest.raises(ValueError, match=r"input_names \('t',\) names 1 inputs, the points have 2 columns"):
        Observations.from_arrays(points, values, input_names=("t",))
    with pytest.raises(ValueError, match="repeats a name"):
        Observations.from_arrays(points, values, input_names=("x", "x"))
    with pytest.raises(ValueError, match=r"points has shape \(0, 2\): no rows"):
        Observations.from_arrays(torch.zeros(0, 2), torch.zeros(0, 1), input_names=("t", "x"))
    with pytest.raises(ValueError, match="provenance must be JSON-serialisable"):
        Observations.from_arrays(points, values, input_names=("t", "x"), provenance={"kind": "x", "f": print})


def test_check_against_the_problem(wave):
    points = torch.tensor([[0.5, 0.5], [1.0, 0.25], [0.2, 1.5]], dtype=torch.float64)
    outside = Observations.from_arrays(points, torch.zeros(3, 1), input_names=("t", "x"))
    with pytest.raises(ValueError, match=r"observation point 2 \(t=0\.2, x=1\.5\) lies outside the domain of wave1d: "
                                         r"t in \[0, 1\], x in \[0, 1\] \(1 of 3 points outside\)"):
        outside.check(wave)
    edge = points[:2].clone()
    edge[1, 0] += 1e-14  # within the tolerance of a box edge
    Observations.from_arrays(edge, torch.zeros(2, 1), input_names=("t", "x")).check(wave)
    with pytest.raises(ValueError, match=r"inputs \('x', 't'\), wave1d has \('t', 'x'\)"):
        Observations.from_arrays(points[:2], torch.zeros(2, 1), input_names=("x", "t")).check(wave)
    with pytest.raises(ValueError, match="2 value column.*wave1d has out_dim=1"):
        Observations.from_arrays(points[:2], torch.zeros(2, 2), input_names=("t", "x")).check(wave)
    with pytest.raises(ValueError, match="observation point 2 .* outside the domain"):
        synthetic(wave, points)


# ----- synthetic draws -----------------------------------------------------------------
def test_synthetic_noise_level_and_seeds(wave):
    obs = synthetic(wave, 4000, noise=0.05, seed=0)
    obs.check(wave)
    assert obs.provenance["source"] == "exact" and obs.provenance["points"]["rule"] == "uniform"
    assert torch.allclose(obs.truth, wave.exact(obs.points), rtol=0, atol=1e-15)
    rms = obs.truth.pow(2).mean().sqrt()
    error = obs.values - obs.truth
    assert abs(float(error.pow(2).mean().sqrt() / rms) / 0.05 - 1) < 0.1
    assert torch.allclose(obs.noise, (0.05 * rms).expand(4000, 1), rtol=1e-15, atol=0)
    z = error / obs.noise  # standard normal
    assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1) < 0.1
    again = synthetic(wave, 4000, noise=0.05, seed=0)
    assert torch.equal(again.values, obs.values) and again.digest() == obs.digest()
    other = synthetic(wave, 4000, noise=0.05, seed=1)
    assert not torch.equal(other.points, obs.points) and other.digest() != obs.digest()
    fixed = synthetic(wave, obs.points, noise=0.05, seed=1)  # given points: only the noise changes with the seed
    assert torch.equal(fixed.points, obs.points) and torch.equal(fixed.truth, obs.truth)
    assert not torch.equal(fixed.values, synthetic(wave, obs.points, noise=0.05, seed=2).values)
    assert fixed.provenance["points"]["rule"] == "given"
    clean = synthetic(wave, 30, noise=0.0)
    assert clean.noise is None and torch.equal(clean.values, clean.truth)


def test_synthetic_from_the_reference_agrees_with_the_exact_solution(wave):
    """The interpolated FD reference (default grid 201 x 201) against the exact solution at
    2000 random points: within 3x the reference's own error (measured 3.2e-9 against its
    2.2e-9 at 4000 points)."""
    exact = synthetic(wave, 2000, seed=5, source="exact")
    interpolated = synthetic(wave, 2000, seed=5, source="reference")
    prov = interpolated.provenance
    assert prov["source"] == "reference" and prov["reference_hash"] == wave.reference().hash
    assert prov["resolution"] == 201 and prov["interpolation"]["degree"] == [5, 5]
    limit = prov["reference_error"]
    assert 0 < limit < 1e-8
    assert rel_l2(interpolated.values.numpy(), exact.values.numpy()) < 3 * limit
    assert prov["interpolation"]["error_estimate"] < 3 * limit
    with pytest.raises(ValueError, match="resolution=9 is for a reference"):
        synthetic(wave, 5, resolution=9, source="exact")
    from pinn_sine.problems import HelmholtzPointSource

    with pytest.raises(ValueError, match="helmholtz-point-source has no exact solution; use source='reference'"):
        synthetic(HelmholtzPointSource(), 5, source="exact")
    with pytest.raises(ValueError, match=r'Invalid source "fd". Must be one of \[\'auto\', \'exact\', \'reference\'\]'):
        synthetic(wave, 5, source="fd")


def test_interpolation_of_every_column_and_its_limits():
    """A two-field reference (u_real, u_imag) on a non-uniform grid: each column is
    interpolated to ~1e-9 of smooth functions; a point off the grid and a scattered
    reference are refused."""
    x = np.sort(np.concatenate([[0.0, 1.0], np.random.default_rng(0).uniform(0, 1, 60)]))
    y = np.linspace(-1.0, 1.0, 41)
    X, Y = np.meshgrid(x, y, indexing="ij")
    ref = ReferenceField.from_arrays({"x": x, "y": y}, {"u_real": np.sin(3 * X) * np.cos(2 * Y),
                                                        "u_imag": np.exp(X * Y)})
    pts = torch.rand(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pts[:, 1] = 2 * pts[:, 1] - 1
    values, record = interpolate_reference(ref, pts, ("x", "y"))
    truth = torch.stack([torch.sin(3 * pts[:, 0]) * torch.cos(2 * pts[:, 1]), torch.exp(pts[:, 0] * pts[:, 1])], 1)
    assert values.shape == (500, 2)
    assert float((values - truth).abs().max()) < 1e-6
    assert record["error_estimate"] < 1e-5
    nodes = torch.tensor([[x[7], y[3]], [x[20], y[40]]], dtype=torch.float64)
    on_nodes, record = interpolate_reference(ref, nodes)
    assert torch.allclose(on_nodes[:, 0], torch.tensor([ref.fields["u_real"][7, 3], ref.fields["u_real"][20, 40]],
                                                       dtype=torch.float64), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match=r"point 1 has y=1\.5, outside the reference grid's y in \[-1\.0, 1\.0\]"):
        interpolate_reference(ref, torch.tensor([[0.5, 0.0], [0.5, 1.5]], dtype=torch.float64))
    scattered = ReferenceField.from_arrays({"x": x[:5], "y": y[:5]}, {"u": x[:5]}, layout="scattered")
    with pytest.raises(ValueError, match="holds scattered points"):
        interpolate_reference(scattered, nodes)


def test_points_between_few_snapshots_are_refused():
    """Wave2D's reference holds 5 snapshot times: random times between them are
    interpolated badly, which is an error naming the fix; sensors at the snapshot times
    are not."""
    problem = Wave2D(t_max=0.4)
    with pytest.raises(ValueError, match=r"uncertain at these points: estimated relative error .* > "
                                         r"max_interpolation_error=0\.001 \(grid \{'t': 5, 'x': 33, 'y': 33\}\)"):
        synthetic(problem, 50, resolution=33)
    at_snapshots = synthetic(problem, sensors([[0.1, 0.2], [0.0, -0.3]], problem.snapshot_times), resolution=33,
                             max_interpolation_error=0.1)
    assert len(at_snapshots) == 10 and at_snapshots.provenance["interpolation"]["degree"] == [4, 5, 5]


# ----- receivers -----------------------------------------------------------------------
def test_line_ring_and_sensors():
    pts = line((0.0, -1.0), (1.0, 1.0), 5)
    assert pts.dtype == torch.float64 and pts.shape == (5, 2)
    assert torch.equal(pts[0], torch.tensor([0.0, -1.0], dtype=torch.float64))
    assert torch.equal(pts[-1], torch.tensor([1.0, 1.0], dtype=torch.float64))
    steps = pts.diff(dim=0)
    assert torch.allclose(steps, steps[:1].expand(4, 2), rtol=0, atol=1e-15)
    assert line((0.0,), (1.0,), 1).tolist() == [[0.0]]
    with pytest.raises(ValueError, match="the segment is a point"):
        line((0.5, 0.5), (0.5, 0.5), 3)
    with pytest.raises(ValueError, match="start has 2 coordinates, end 3"):
        line((0.0, 0.0), (1.0, 1.0, 1.0), 3)

    circle = ring((0.25, -0.5), 0.3, 12)
    assert circle.dtype == torch.float64 and circle.shape == (12, 2)
    offset = circle - torch.tensor([0.25, -0.5], dtype=torch.float64)
    assert torch.allclose(offset.norm(dim=1), torch.full((12,), 0.3, dtype=torch.float64), rtol=0, atol=1e-15)
    angles = torch.atan2(offset[:, 1], offset[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles, 2 * math.pi * torch.arange(12, dtype=torch.float64) / 12, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="a ring lies in a plane"):
        ring((0.0, 0.0, 0.0), 0.3, 4)
    with pytest.raises(ValueError, match="radius must be > 0"):
        ring((0.0, 0.0), 0.0, 4)

    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    grid = sensors([[0.1, 0.2], [0.3, 0.4]], times)
    assert grid.dtype == torch.float64 and grid.shape == (6, 3)
    for i, p in enumerate(([0.1, 0.2], [0.3, 0.4])):
        for j, t in enumerate(times.tolist()):
            assert grid[i * 3 + j].tolist() == [t, *p]  # row i * k + j: sensor i at time j, t first
    assert sensors([0.25, 0.75], [0.0, 1.0]).tolist() == [[0.0, 0.25], [1.0, 0.25], [0.0, 0.75], [1.0, 0.75]]


# ----- the data term -------------------------------------------------------------------
def test_scale_and_residual():
    points, _ = _arrays(4)
    values = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [3.0, 0.0], [-3.0, 0.0]], dtype=torch.float64)
    blind = Observations.from_arrays(points, values, input_names=("t", "x"))
    rms = math.sqrt(5.0)  # column 0; the zero column 1 takes the largest column's RMS
    assert torch.equal(blind.scale(), torch.full((4, 2), rms, dtype=torch.float64))
    u = torch.zeros(4, 2, dtype=torch.float32, requires_grad=True)
    r = blind.residual(u)
    assert r.dtype == torch.float32 and torch.allclose(r, (-values / rms).float())
    r.pow(2).sum().backward()
    assert u.grad is not None and torch.allclose(u.grad, (2 * -values / rms**2).float())

    sigma = torch.tensor([[0.1], [0.2], [0.3], [0.4]], dtype=torch.float64)
    noisy = Observations.from_arrays(points, values, sigma, input_names=("t", "x"))
    # the column's RMS, weighted by each point's noise relative to the mean noise (0.25)
    expected = rms * sigma.expand(4, 2) / 0.25
    assert torch.allclose(noisy.scale(), expected, rtol=1e-15, atol=0)
    u = values + 1.0
    assert torch.allclose(noisy.residual(u), 1.0 / expected, rtol=1e-15, atol=0)
    same = Observations.from_arrays(points, values, torch.full((4, 1), 0.3), input_names=("t", "x"))
    assert torch.allclose(same.scale(), blind.scale(), rtol=1e-15, atol=0)  # equal noise: no weighting
    with pytest.raises(ValueError, match=r"u has shape \(4, 1\); the residual needs the network at the 4 observation "
                                         r"points, \(4, 2\)"):
        noisy.residual(torch.zeros(4, 1, dtype=torch.float64))
    zeros = Observations.from_arrays(points, torch.zeros(4, 1), input_names=("t", "x"))
    assert torch.equal(zeros.scale(), torch.ones(4, 1, dtype=torch.float64))


# ----- the command ---------------------------------------------------------------------
def test_observe_command_writes_a_file_and_refuses_to_overwrite(tmp_path, capsys, one_thread):
    out = tmp_path / "obs.h5"
    argv = ["observe", "wave1d", "--points", "200", "--noise", "0.01", "--seed", "0", "--out", str(out)]
    assert main(argv) == 0
    obs = Observations.from_file(out)
    printed = capsys.readouterr().out.strip()
    assert printed == (f"wave1d: 200 observations (uniform, seed 0), noise 0.01 relative, source exact; wrote {out}, "
                       f"digest {obs.digest()[:16]}")
    assert len(obs) == 200 and obs.provenance["stored"]["noise"] == 0.01
    assert obs.digest() == synthetic(Wave1D(), 200, noise=0.01, seed=0).digest()
    with pytest.raises(SystemExit, match="obs.h5 exists; pass --overwrite to replace it"):
        main(argv[:-2] + ["--seed", "1", "--out", str(out)])
    assert Observations.from_file(out).digest() == obs.digest()
    assert main(argv[:-2] + ["--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert Observations.from_file(out).digest() != obs.digest()

    sensors_out = tmp_path / "sensors.h5"
    assert main(["observe", "wave1d", "--layout", "sensors:0.25,0.5@21", "--source", "reference", "--c", "1.5",
                 "--out", str(sensors_out)]) == 0
    obs = Observations.from_file(sensors_out)
    assert len(obs) == 42 and obs.provenance["stored"]["params"]["c"] == 1.5
    assert obs.provenance["stored"]["points"]["layout"] == "sensors:0.25,0.5@21"
    with pytest.raises(SystemExit, match=r"--layout ring:0,0,0\.5: a ring takes cx,cy,r in a problem of two inputs"):
        main(["observe", "wave2d", "--layout", "ring:0,0,0.5", "--points", "8", "--out", str(tmp_path / "r.h5")])
    with pytest.raises(SystemExit, match="--layout line needs --points N"):
        main(["observe", "wave1d", "--layout", "line:0,0,1,1", "--out", str(tmp_path / "l.h5")])
