"""HelmholtzPointSource with several sources: one network output pair per source, each
pair the single-source problem's (residual, background, reference), one problem
(shared velocity, layer and unknowns) for all of them."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pinn_sine.cli import main
from pinn_sine.nets import build_net
from pinn_sine.observations import ring, synthetic
from pinn_sine.problems import HelmholtzPointSource, check_problem
from pinn_sine.runs import load_run, read_config
from pinn_sine.validation import load_reference

A, B = (0.0, 0.0), (0.05, -0.03)  # inside 0.05 of the centre: the scattered formulation's 9 widths fit


class _SideBySide(nn.Module):
    """Two 2-output networks as one 4-output network."""

    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


@pytest.mark.parametrize("formulation", ["total", "scattered"])
def test_each_output_pair_is_its_own_single_source_problem(formulation):
    both = HelmholtzPointSource(velocity="square", source_center=[A, B], formulation=formulation)
    one_a = HelmholtzPointSource(velocity="square", source_center=A, formulation=formulation)
    one_b = HelmholtzPointSource(velocity="square", source_center=B, formulation=formulation)
    assert both.out_dim == 4 and one_a.out_dim == 2 and both.n_sources == 2
    net_a = build_net(one_a, "siren", width=8, depth=2, seed=0).double()
    net_b = build_net(one_b, "siren", width=8, depth=2, seed=1).double()
    x = both.draw(64, torch.Generator().manual_seed(2))["interior"].double()
    batch = {"interior": x}
    jet = both.jets(_SideBySide(net_a, net_b), batch, engine="autograd")["interior"]
    jet_a = one_a.jets(net_a, batch, engine="autograd")["interior"]
    jet_b = one_b.jets(net_b, batch, engine="autograd")["interior"]
    source = both.scattered_source(x) if formulation == "scattered" else None
    re, im = both.residual(jet, x, source)
    for s, (one, j) in enumerate(((one_a, jet_a), (one_b, jet_b))):
        own = one.scattered_source(x) if formulation == "scattered" else None
        if own is not None:
            assert torch.equal(source[:, 2 * s:2 * s + 2], own)
            assert torch.equal(both.background(x)[:, 2 * s:2 * s + 2], one.background(x))
        r1, i1 = one.residual(j, x, own)
        assert torch.allclose(re[:, s:s + 1], r1, rtol=1e-12, atol=1e-12 * float(r1.detach().abs().max()))
        assert torch.allclose(im[:, s:s + 1], i1, rtol=1e-12, atol=1e-12 * float(i1.detach().abs().max()))
    # the interior residual is interleaved as the outputs: (Re, Im) of source 1, then of source 2
    rows = both.residuals({"interior": jet, "boundary": jet}, {"interior": x, "boundary": x,
                                                                **({"f_scattered": source} if source is not None
                                                                   else {})})["pde"]
    assert torch.allclose(rows[:, 2], re[:, 1] / both._f2 ** 0.5, rtol=1e-12)
    assert torch.allclose(rows[:, 1], im[:, 0] / both._f2 ** 0.5, rtol=1e-12)


def test_the_reference_holds_one_field_per_source():
    both = HelmholtzPointSource(velocity="square", source_center=[A, B])
    ref = both.reference(129, cache=False)
    assert list(ref.fields) == ["u_real", "u_imag", "u2_real", "u2_imag"] and ref.out_dim == 4
    for name, centre in (("u", A), ("u2", B)):
        one = HelmholtzPointSource(velocity="square", source_center=centre).reference(129, cache=False)
        for part in ("real", "imag"):
            assert np.array_equal(ref.fields[f"{name}_{part}"], one.fields[f"u_{part}"])
    singles = [HelmholtzPointSource(velocity="square", source_center=c).reference(129, cache=False).error_estimate
               for c in (A, B)]
    assert ref.error_estimate == max(singles)


def test_several_sources_pass_the_conformance_suite_and_round_trip_their_params():
    for kwargs in ({"source_center": [A, B]}, {"source_center": [A, B], "formulation": "scattered"},
                   {"source_center": [A, B], "formulation": "scattered", "background_velocity": [1.0, 1.5]}):
        p = HelmholtzPointSource(**kwargs)
        check_problem(p)
        assert HelmholtzPointSource(**p.params()).params() == p.params()
    p = HelmholtzPointSource(source_center=[A, B], formulation="scattered")
    assert p.params()["source_center"] == [list(A), list(B)] and p.params()["background_velocity"] == [1.0, 1.0]
    # one source keeps its record (and its reference's cache key) as before
    assert HelmholtzPointSource().params()["source_center"] == [0.0, 0.0]
    # the near-source points are shared out between the sources
    x = p.draw(400, torch.Generator().manual_seed(0))["interior"]
    for centre in (A, B):
        near = (x - torch.tensor(centre)).norm(dim=1) < p.source_radius * p.width
        assert int(near.sum()) >= 10


@pytest.mark.parametrize("kwargs,match", [
    ({"source_center": [A, A]}, "same source twice"),
    ({"source_center": [A, (0.7, 0.0)]}, r"source_center=\(0\.7, 0\) is outside the physical region"),
    ({"source_center": [A, B], "formulation": "scattered", "background_velocity": [1.0, 1.0, 1.0]},
     "3 entries for 2 source"),
    ({"source_center": [A, (0.2, 0.0)], "formulation": "scattered"}, r"source_center=\(0\.2, 0\.0\) is 0\.3"),
    ({"source_center": [A, "b"]}, "must be a pair"),
])
def test_bad_sources_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HelmholtzPointSource(**kwargs)


def test_observations_and_an_unknown_velocity_take_every_source():
    p = HelmholtzPointSource(source_center=[A, B])
    obs = synthetic(p, ring((0.0, 0.0), 0.4, 12), resolution=129)
    assert obs.values.shape == (12, 4)
    # the second source's columns are the single-source problem's observations
    one = synthetic(HelmholtzPointSource(source_center=B), ring((0.0, 0.0), 0.4, 12), resolution=129)
    assert torch.allclose(obs.values[:, 2:], one.values, rtol=1e-12, atol=1e-15)
    p.declare_unknown("velocity", [0.0] * 9, lower=-1.0, upper=1.0).observe(obs)
    check_problem(p)


def test_the_command_line_takes_several_sources(tmp_path, capsys):
    tiny = ["--width", "8", "--depth", "1", "--batch", "32", "--resolution", "41", "--eval-every", "5", "--quiet"]
    run = tmp_path / "run"
    main(["solve", "helmholtz-point-source", "--source-center", "[(0.0, 0.0), (0.05, -0.03)]", "--steps", "4",
          "--out", str(run), *tiny])
    config = read_config(run)
    assert config["problem"]["params"]["source_center"] == [list(A), list(B)]
    loaded = load_run(run)
    assert loaded.problem.n_sources == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"rel_l2_u_real", "rel_l2_u2_imag", "rel_l2_abs", "rel_l2_u2_abs"} <= set(metrics)
    stored = load_reference(run / "prediction.h5")
    assert list(stored.fields) == ["u_real", "u_imag", "u2_real", "u2_imag"]
    again = tmp_path / "again"
    main(["solve", "--config", str(run / "config.json"), "--out", str(again)])
    assert read_config(again)["problem"] == config["problem"]
    capsys.readouterr()
    main(["solve", "--resume", str(run), "--steps", "6"])
    assert "resumed from step 4" in capsys.readouterr().out


def test_the_scattered_formulation_recovers_velocity_columns_and_observes_the_total_field():
    """An unknown velocity under the scattered formulation (c0 given): f_s follows the
    trainable c, its Jacobian columns are finite differences of the residual, and the
    data term compares the total field u_b + network with the observations."""
    from pinn_sine.derivatives import linearize

    p = HelmholtzPointSource(source_center=[A, B], formulation="scattered", background_velocity=1.0)
    points = ring((0.0, 0.0), 0.4, 8)
    obs = synthetic(HelmholtzPointSource(source_center=[A, B]), points, resolution=129)
    with pytest.raises(ValueError, match="given background_velocity"):
        HelmholtzPointSource(formulation="scattered").declare_unknown("velocity", [0.0] * 4)
    p.declare_unknown("velocity", [0.05, -0.02, 0.01, 0.03], lower=-1.0, upper=1.0).observe(obs)
    check_problem(p)
    net = build_net(p, "siren", width=8, depth=2, seed=0).double()
    batch = {k: v.double() for k, v in p.draw(24, torch.Generator().manual_seed(0)).items()}
    assert {"u0_interior", "f_rest", "u0_boundary"} <= set(batch) and "f_scattered" not in batch
    lin = linearize(p, net, batch, {})
    J = lin.materialize()
    z = p.coefficients()["velocity"]
    z0 = z.detach().clone()
    for k in range(4):
        step = torch.zeros(4, dtype=torch.float64)
        step[k] = 1e-6
        rs = []
        for sign in (1, -1):
            with torch.no_grad():
                z.copy_(z0 + sign * step)
            rs.append(linearize(p, net, batch, {}).r)
        fd = (rs[0] - rs[1]) / 2e-6
        column = J[:, lin.n_net + k]
        assert torch.allclose(column, fd, rtol=1e-5, atol=1e-7 * float(column.abs().max()))
    with torch.no_grad():
        z.copy_(z0)
    # the data rows: (u_b + net - y) / scale at the observation points
    u = net(points)
    expected = obs.residual(u + p.background(points))
    rows = p.residuals(p.jets(net, batch), batch)["data"]
    assert torch.allclose(rows, expected, rtol=1e-12, atol=1e-14)


def test_observe_then_solve_a_velocity_from_two_sources_on_the_command_line(tmp_path, capsys):
    """The CLI path of the several-source inverse problem: observe the total fields of two
    sources on a ring, then fit a 3 x 3 velocity expansion in the scattered formulation."""
    sources = ["--source-center", "[(0.0, 0.0), (0.05, -0.03)]", "--velocity", "circle"]
    obs = tmp_path / "obs.h5"
    assert main(["observe", "helmholtz-point-source", *sources, "--points", "12", "--layout", "ring:0,0,0.4",
                 "--resolution", "129", "--out", str(obs)]) == 0
    run = tmp_path / "run"
    main(["solve", "helmholtz-point-source", *sources, "--formulation", "scattered", "--background-velocity", "1.0",
          "--unknown", "velocity=0*9:-1:1", "--observations", str(obs), "--stage", "adam:steps=3",
          "--stage", "gauss_newton:steps=2,batch=48", "--width", "8", "--depth", "1", "--resolution", "129",
          "--dtype", "float64", "--quiet", "--out", str(run)])
    assert "recovered velocity: 9 entries" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["coefficients"]["velocity"]["value"]) == 9 and metrics["observations"]["out_dim"] == 4
    assert load_run(run).problem.n_sources == 2
