"""The Ensemble network (the mean of networks as functions) and the SnapshotEnsemble
callback that builds one from a Gauss-Newton stage's last batch fits (issue 26)."""
from __future__ import annotations

import pytest
import torch

from pinn_sine import train
from pinn_sine.callbacks import Callback, SnapshotEnsemble
from pinn_sine.checkpoint import load_checkpoint
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.derivatives.forward import forward_jet
from pinn_sine.nets import MLP, Ensemble, FourierFeatures, Sine, net_from_config
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.optim.conformance import interrupting
from pinn_sine.problems import Poisson2D


def _members(k=3):
    nets = [MLP(2, 1, 12, 2, activation=Sine(3.0), first_omega=2.0, seed=s).double() for s in range(k)]
    nets.append(MLP(2, 1, 12, 2, activation=Sine(3.0), seed=9, fourier=FourierFeatures(4, 1.0)).double())
    return nets


def test_the_ensemble_is_the_mean_and_its_jet_the_mean_of_the_jets():
    nets = _members()
    ens = Ensemble(nets)
    x = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert ens.members == 4 and (ens.in_dim, ens.out_dim) == (2, 1)
    assert torch.allclose(ens(x), sum(n(x) for n in nets) / 4, rtol=0, atol=1e-15)
    spec = DerivativeSpec(first=("x",), second=(("x", "y"),), laplacians=(("x", "y"),))
    jet = forward_jet(ens, x, ("x", "y"), spec)
    parts = [forward_jet(n, x, ("x", "y"), spec) for n in nets]
    for get in (lambda j: j.u, lambda j: j.d("x"), lambda j: j.d2("x", "y"), lambda j: j.laplacian(("x", "y"))):
        assert torch.allclose(get(jet), sum(get(j) for j in parts) / 4, rtol=1e-12, atol=1e-12)
    # and against autograd through forward(): the Laplacian of the mean, to float64 rounding
    p = Poisson2D()
    batch = {"interior": x, "boundary": x}
    lap_jet = p.jets(ens, batch)["interior"].laplacian(("x", "y"))
    lap_ad = p.jets(ens, batch, engine="autograd")["interior"].laplacian(("x", "y"))
    assert torch.allclose(lap_jet, lap_ad, rtol=1e-10, atol=1e-10 * lap_ad.abs().max().item())


def test_the_ensemble_config_rebuilds_it():
    ens = Ensemble(_members(2))
    again = net_from_config(ens.config).double()
    assert isinstance(again, Ensemble) and again.members == 3
    again.load_state_dict(ens.state_dict())
    x = torch.rand(10, 2, dtype=torch.float64)
    assert torch.equal(again(x), ens(x))
    with pytest.raises(ValueError, match=r"an ensemble config holds \{'ensemble': \{'nets'"):
        net_from_config({"ensemble": {"nets": []}})


def test_ensemble_errors():
    with pytest.raises(ValueError, match="Ensemble needs at least one network"):
        Ensemble([])
    with pytest.raises(ValueError, match="the networks must all have the same in_dim and out_dim"):
        Ensemble([MLP(2, 1, 4, 1), MLP(3, 1, 4, 1)])
    with pytest.raises(ValueError, match="an ensemble of networks has no single layer trace"):
        forward_jet(Ensemble(_members(1)), torch.zeros(3, 2, dtype=torch.float64), ("x", "y"),
                    DerivativeSpec(first=("x",)), trace=[])


class Params(Callback):
    """The network's parameters after every step (global step -> state dict)."""

    def __init__(self):
        self.seen = {}

    def on_after_step(self, loop, stage, result):
        self.seen[loop.global_step] = {k: v.detach().clone() for k, v in loop.context.net.state_dict().items()}


def _kw(**extra):
    return dict(stages=[Adam(10, lr=1e-2), GaussNewton(12, batch=40, resample_every=3)], batch=48, seed=1,
                progress=False, stall=None, log_every=2, **extra)


def test_snapshots_are_the_fits_of_the_last_batches():
    net = MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double()
    snaps, seen = SnapshotEnsemble(every=3, keep=2), Params()
    train(Poisson2D(), net, callbacks=[snaps, seen], **_kw())
    # Gauss-Newton's steps 3, 6, 9, 12 end its batches (global 13, 16, 19, 22): the last two kept
    assert snaps.steps == [19, 22]
    for step, params in snaps.snapshots:
        assert all(torch.equal(params[k], seen.seen[step][k]) for k in params)
    ens = snaps.ensemble()
    assert ens.members == 2 and ens.nets[0] is not net and ens.nets[1] is not net
    x = torch.rand(16, 2, dtype=torch.float64)
    assert torch.equal(ens.nets[1](x), net(x))  # the last batch ended at the run's last step
    assert snaps.ensemble(keep=1).members == 1
    with pytest.raises(ValueError, match=r"keep must be an integer in \[1, 2\]"):
        snaps.ensemble(keep=3)


def test_snapshots_survive_a_resume_bit_for_bit(tmp_path):
    ck = tmp_path / "ck.pt"
    full = SnapshotEnsemble(every=3, keep=3)
    train(Poisson2D(), MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double(), callbacks=[full], **_kw())
    with pytest.raises(KeyboardInterrupt):  # killed inside the Gauss-Newton stage, after a checkpoint at step 20
        train(interrupting(Poisson2D)(30), MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double(),
              callbacks=[SnapshotEnsemble(every=3, keep=3)], checkpoint=ck, checkpoint_every=4, **_kw())
    stored = load_checkpoint(ck)
    assert stored["step"] > 13 and stored["meta"]["callbacks"]["snapshot_ensemble"]["snapshots"]
    resumed = SnapshotEnsemble(every=3, keep=3)
    train(Poisson2D(), MLP(2, 1, 8, 2, seed=5, activation=Sine(3.0)).double(), callbacks=[resumed], resume=ck,
          checkpoint_every=4, **_kw())
    assert resumed.steps == full.steps == [16, 19, 22]
    for (_, a), (_, b) in zip(resumed.snapshots, full.snapshots):
        assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_snapshot_ensemble_errors():
    with pytest.raises(ValueError, match=r"SnapshotEnsemble: every must be an integer >= 1, got every=0"):
        SnapshotEnsemble(every=0)
    with pytest.raises(ValueError, match=r"SnapshotEnsemble: keep must be an integer >= 1, got keep=True"):
        SnapshotEnsemble(every=5, keep=True)
    with pytest.raises(TypeError, match="stage is a stage's name"):
        SnapshotEnsemble(every=5, stage=None)
    with pytest.raises(ValueError, match=r"kept no snapshot: no 'gauss_newton' stage reached a multiple of every=5"):
        SnapshotEnsemble(every=5).ensemble()


TINY = ["--width", "8", "--depth", "1", "--batch", "32", "--resolution", "9", "--eval-every", "5", "--quiet",
        "--dtype", "float64"]


def test_solve_ensemble_reports_the_mean_and_load_run_rebuilds_it(tmp_path, capsys):
    import json

    from pinn_sine.cli import main
    from pinn_sine.runs import load_run
    from pinn_sine.validation.evaluate import evaluate

    run = tmp_path / "run"
    main(["solve", "poisson2d", "--stage", "adam:steps=10", "--stage", "gn:steps=9,batch=40,resample_every=3",
          "--ensemble", "2", "--out", str(run), *TINY])
    assert "the mean of the last 2 batch fits (steps [16, 19])" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ensemble"]["members"] == 2 and metrics["ensemble"]["steps"] == [16, 19]
    assert set(metrics["ensemble"]["last_iterate"]) >= {"rel_l2", "rel_l2_exact"}
    loaded = load_run(run)
    assert loaded.config["options"]["ensemble"] == 2 and loaded.ensemble.members == 2
    ref = loaded.problem.reference(9)
    again = evaluate(loaded.ensemble, ref, prediction=loaded.problem.predict(loaded.ensemble, ref))
    assert again["rel_l2"] == pytest.approx(metrics["rel_l2"], rel=1e-12)
    last = evaluate(loaded.net, ref, prediction=loaded.problem.predict(loaded.net, ref))
    assert last["rel_l2"] == pytest.approx(metrics["ensemble"]["last_iterate"]["rel_l2"], rel=1e-12)
    plain = tmp_path / "plain"
    main(["solve", "poisson2d", "--steps", "3", "--out", str(plain), *TINY])
    assert load_run(plain).ensemble is None and "ensemble" not in json.loads((plain / "metrics.json").read_text())


def test_solve_ensemble_every_keeps_the_last_stages_iterates(tmp_path, capsys):
    """--ensemble-every N: the network after every N-th step of the last stage (here Adam),
    the last K of them; the run's answer is their mean, as load_run rebuilds it."""
    import json

    from pinn_sine.cli import main
    from pinn_sine.runs import load_run
    from pinn_sine.validation.evaluate import evaluate

    run = tmp_path / "run"
    main(["solve", "poisson2d", "--steps", "10", "--ensemble", "3", "--ensemble-every", "3", "--out", str(run),
          *TINY])
    assert "the mean of the last 3 adam iterates (one every 3 steps) (steps [3, 6, 9])" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ensemble"]["steps"] == [3, 6, 9] and metrics["ensemble"]["kept"].startswith("adam iterates")
    loaded = load_run(run)
    assert loaded.config["options"]["ensemble_every"] == 3 and loaded.ensemble.members == 3
    ref = loaded.problem.reference(9)
    again = evaluate(loaded.ensemble, ref, prediction=loaded.problem.predict(loaded.ensemble, ref))
    assert again["rel_l2"] == pytest.approx(metrics["rel_l2"], rel=1e-12)
    assert metrics["rel_l2"] != pytest.approx(metrics["ensemble"]["last_iterate"]["rel_l2"], rel=1e-6)


def test_solve_ensemble_errors(tmp_path):
    from pinn_sine.cli import main

    with pytest.raises(SystemExit, match=r"--ensemble K averages the fits of a Gauss-Newton stage's redrawn batches"):
        main(["solve", "poisson2d", "--steps", "3", "--ensemble", "4", "--out", str(tmp_path / "a"), *TINY])
    with pytest.raises(SystemExit, match=r"--ensemble-every 5 sets the steps between the iterates of an --ensemble; "
                                         r"give --ensemble K too"):
        main(["solve", "poisson2d", "--steps", "3", "--ensemble-every", "5", "--out", str(tmp_path / "c"), *TINY])
    with pytest.raises(SystemExit, match="it does not combine with --windows"):
        main(["solve", "wave1d", "--stage", "gn:steps=3,batch=40,resample_every=3", "--windows", "2",
              "--ensemble", "4", "--out", str(tmp_path / "b"), *TINY])


def test_solve_ensemble_without_a_kept_fit_answers_with_the_last_iterate(tmp_path, capsys):
    import json

    from pinn_sine.cli import main

    run = tmp_path / "run"
    main(["solve", "poisson2d", "--stage", "adam:steps=3", "--stage", "gn:steps=2,batch=40,resample_every=50",
          "--ensemble", "8", "--out", str(run), *TINY])
    assert "--ensemble: none of the batch fits was kept" in capsys.readouterr().err
    assert "ensemble" not in json.loads((run / "metrics.json").read_text())
