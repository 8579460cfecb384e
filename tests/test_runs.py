"""Run folders and checkpoint safety: every refusal of a checkpoint, stale temp files,
load_net / load_run, the run config's round trip through ``solve --config`` and
``--resume``, the refusal to overwrite a run, and the divergence guard."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re

import numpy as np
import pytest
import torch

from pinn_sine import train
from pinn_sine._io import atomic_write
from pinn_sine.checkpoint import CheckpointError, load_checkpoint
from pinn_sine.cli import main
from pinn_sine.nets import MLP, Sine, build_net
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import Poisson2D, Wave1D
from pinn_sine.runs import load_net, load_run, read_config

TINY = ["--width", "8", "--depth", "1", "--batch", "32", "--resolution", "9", "--eval-every", "5", "--quiet"]


def _net(seed=0, width=8):
    return MLP(2, 1, width=width, depth=1, activation=Sine(4.0), seed=seed)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint of 4 Adam steps on Poisson2D."""
    ck = tmp_path_factory.mktemp("ck") / "checkpoint.pt"
    train(Poisson2D(), _net(), steps=4, batch=32, progress=False, checkpoint=ck, log_every=2)
    return ck


def _rewrite(src, dst, change):
    """``src`` edited by ``change`` and re-signed (its digest recomputed), as a deliberate
    edit would be: what the checks behind the digest must still catch."""
    outer = torch.load(src, weights_only=True)
    payload = torch.load(io.BytesIO(outer["payload"].numpy().tobytes()), weights_only=True)
    change(payload)
    inner = io.BytesIO()
    torch.save(payload, inner)
    data = inner.getvalue()
    torch.save({"format": 3, "sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, dst)
    return dst


def _meta_edit(edit):
    def change(payload):
        meta = json.loads(payload["meta_json"])
        edit(meta)
        payload["meta_json"] = json.dumps(meta)
    return change


def test_a_changed_bit_is_refused(tmp_path, checkpoint):
    """200 single bit flips anywhere in the file: none loads with changed contents. Each
    is refused (by the digest, or the file no longer reads) or fell in bytes that carry
    no content (the zip container's alignment padding), and then loads the same."""
    original = load_checkpoint(checkpoint)
    data = bytearray(checkpoint.read_bytes())
    rng = np.random.default_rng(0)
    refused = 0
    for k, pos in enumerate(rng.integers(0, len(data), 200)):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        bad = tmp_path / "flip.pt"
        bad.write_bytes(bytes(flipped))
        try:
            loaded = load_checkpoint(bad)
        except CheckpointError as err:
            assert re.search("SHA-256|cannot be read|damaged|payload", str(err)), err
            refused += 1
            continue
        assert loaded["meta"] == original["meta"] and loaded["step"] == original["step"]
        assert all(torch.equal(loaded["net"][key], value) for key, value in original["net"].items())
    assert refused >= 150


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(stage=5), r"states of 1 stages for stage index 5"),
    (lambda p: p.update(stage_step=-3), r"stage_step -3 is not an integer >= 0"),
    (lambda p: p.update(stage_step=10**6), r"stage_step 1000000 exceeds the stage's 4 steps"),
    (lambda p: p.update(step=1), r"history has rows past its step 1"),
    (_meta_edit(lambda m: m.update(elapsed=-1.0)), r"elapsed -1\.0 is not a finite number"),
    (_meta_edit(lambda m: m.update(history={})), r"its history is not a list of rows"),
    (_meta_edit(lambda m: m["stages"].append(m["stages"][0])), r"stage descriptions do not match"),
])
def test_counters_out_of_range_are_refused(tmp_path, checkpoint, edit, message):
    bad = _rewrite(checkpoint, tmp_path / "edited.pt", edit)
    with pytest.raises(CheckpointError, match="counters out of range: .*" + message):
        load_checkpoint(bad)


# ----- checkpoint refusals -------------------------------------------------------------
def test_truncated_checkpoint(tmp_path, checkpoint):
    bad = tmp_path / "cut.pt"
    bad.write_bytes(checkpoint.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"cut\.pt: cannot be read, the file is truncated or corrupted"):
        load_checkpoint(bad)


def test_garbage_checkpoint(tmp_path):
    bad = tmp_path / "noise.pt"
    bad.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match=r"noise\.pt: cannot be read"):
        load_checkpoint(bad)


def test_text_file_as_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("\u00e9t\u00e9 " * 100)
    with pytest.raises(CheckpointError, match=r"notes\.pt: cannot be read"):
        load_checkpoint(bad)


def test_folder_as_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder; give the checkpoint file"):
        load_checkpoint(tmp_path)


def test_wrong_format(tmp_path, checkpoint):
    bad = _rewrite(checkpoint, tmp_path / "f1.pt", lambda p: p.update(format=1))
    with pytest.raises(CheckpointError, match=r"f1\.pt: is not a pinn_sine checkpoint of format 2 \(format 1\)"):
        load_checkpoint(bad)


def test_missing_keys(tmp_path, checkpoint):
    bad = _rewrite(checkpoint, tmp_path / "nokeys.pt", lambda p: [p.pop("net"), p.pop("stages")])
    with pytest.raises(CheckpointError, match=r"nokeys\.pt: lacks the keys \['net', 'stages'\]"):
        load_checkpoint(bad)


def test_missing_meta_keys(tmp_path, checkpoint):
    def drop(p):
        meta = json.loads(p["meta_json"])
        del meta["history"]
        p["meta_json"] = json.dumps(meta)
    bad = _rewrite(checkpoint, tmp_path / "nometa.pt", drop)
    with pytest.raises(CheckpointError, match=r"its meta lacks the keys \['history'\]"):
        load_checkpoint(bad)


def test_bad_meta_json(tmp_path, checkpoint):
    bad = _rewrite(checkpoint, tmp_path / "json.pt", lambda p: p.update(meta_json="{not json"))
    with pytest.raises(CheckpointError, match="its meta_json is not valid JSON"):
        load_checkpoint(bad)


def test_non_finite_weights(tmp_path, checkpoint):
    def poison(p):
        p["net"]["linears.0.weight"][0, 0] = float("nan")
    bad = _rewrite(checkpoint, tmp_path / "nan.pt", poison)
    with pytest.raises(CheckpointError, match=r"nan\.pt: holds non-finite weights in \['linears\.0\.weight'\]"):
        load_checkpoint(bad)


def test_resume_refuses_other_problem(checkpoint):
    with pytest.raises(CheckpointError, match=r"another run: problem: checkpoint 'poisson2d', this run 'wave1d'"):
        train(Wave1D(), _net(), steps=8, batch=32, progress=False, resume=checkpoint)


def test_resume_refuses_other_params(checkpoint):
    problem = Poisson2D(bounds=((-1.0, 1.0), (-1.0, 2.0)))
    with pytest.raises(CheckpointError,
                       match=r"problem parameter bounds: checkpoint \[\[-1\.0, 1\.0\], \[-1\.0, 1\.0\]\]"):
        train(problem, _net(), steps=8, batch=32, progress=False, resume=checkpoint)


def test_resume_refuses_other_net(checkpoint):
    with pytest.raises(CheckpointError, match=r"network width: checkpoint 8, this run 16"):
        train(Poisson2D(), _net(width=16), steps=8, batch=32, progress=False, resume=checkpoint)


def test_resume_ignores_init_seed(tmp_path, checkpoint):
    result = train(Poisson2D(), _net(seed=7), steps=6, batch=32, progress=False, resume=checkpoint, log_every=2)
    assert result.history[-1]["step"] == 6


def test_resumed_finished_run_keeps_final_losses(checkpoint):
    again = train(Poisson2D(), _net(), steps=4, batch=32, progress=False, resume=checkpoint)
    assert set(again.final_losses) == {"loss", "pde", "boundary"}
    assert again.final_losses["loss"] == again.history[-1]["loss"]


# ----- temp files ------------------------------------------------------------------------
def test_stale_temp_files_removed(tmp_path):
    """A temp file of a killed write (its process gone) goes; a live process's, another
    target's and a foreign name stay."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    target = tmp_path / "checkpoint.pt"
    stale = tmp_path / f"checkpoint.pt.{dead}.ab12_xyz.tmp"
    live = tmp_path / f"checkpoint.pt.{os.getppid()}.ab12_xyz.tmp"  # a write in progress elsewhere: kept
    other = tmp_path / f"history.csv.{dead}.ab12_xyz.tmp"  # another file's: kept
    unrelated = tmp_path / "checkpoint.pt.notes.tmp"  # not atomic_write's name: kept
    for p in (stale, live, other, unrelated):
        p.write_text("partial")
    atomic_write(target, lambda tmp: open(tmp, "w").write("done"))
    assert target.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, other.name, unrelated.name])


# ----- load_net / load_run -----------------------------------------------------------------
def test_load_net_rebuilds_the_trained_net(tmp_path):
    ck = tmp_path / "ck.pt"
    net = build_net(Poisson2D(), "metasin", width=8, depth=1).double()
    train(Poisson2D(), net, steps=2, batch=16, progress=False, checkpoint=ck)
    loaded = load_net(ck)
    assert loaded.config == net.config and next(loaded.parameters()).dtype == torch.float64
    assert loaded.trained_for == net.trained_for == "poisson2d"  # evaluate() refuses other problems' references
    x = torch.rand(5, 2, dtype=torch.float64)
    assert torch.equal(loaded(x), net(x))


def test_load_net_hard_needs_problem(tmp_path):
    problem = Poisson2D(constraint="hard")
    ck = tmp_path / "ck.pt"
    net = problem.constrain(_net())
    train(problem, net, steps=2, batch=16, progress=False, checkpoint=ck)
    with pytest.raises(CheckpointError, match="holds a hard-constrained network of poisson2d; pass problem="):
        load_net(ck)
    x = torch.rand(5, 2)
    assert torch.equal(load_net(ck, problem)(x), net(x))
    with pytest.raises(CheckpointError, match="problem parameter constraint: checkpoint 'hard', this run 'soft'"):
        load_net(ck, Poisson2D())


def test_solve_config_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    main(["solve", "wave1d", "--c", "2.0", "--steps", "4", "--out", str(run), *TINY])
    config = read_config(run)
    assert config["problem"] == {"name": "wave1d", "options": {"c": 2.0}, "constraint": "soft",
                                 "params": Wave1D(c=2.0).params()}
    assert config["net"]["width"] == 8 and config["stages"][0]["steps"] == 4
    assert config["options"]["batch"] == 32 and config["options"]["dtype"] == "float32"
    assert config["reference"]["hash"] == Wave1D(c=2.0).reference(9).hash
    assert set(config["versions"]) >= {"pinn_sine", "torch", "python"} and config["timestamp"]
    assert config["command"][1:] == ["solve", "wave1d", "--c", "2.0", "--steps", "4", "--out", str(run), *TINY]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["final_losses"]) == {"loss", "pde", "initial", "initial_velocity", "boundary"}
    assert all(math.isfinite(v) for v in metrics["final_losses"].values())

    # the rerun from the config, one option overridden, is the same run but for it
    again = tmp_path / "again"
    main(["solve", "--config", str(run / "config.json"), "--out", str(again), "--seed", "3"])
    rerun = read_config(again)
    assert rerun["problem"] == config["problem"] and rerun["net"] == {**config["net"], "seed": 3}
    assert {k: v for k, v in rerun["options"].items() if k not in ("out", "seed")} == \
        {k: v for k, v in config["options"].items() if k not in ("out", "seed")}
    # the same seed reproduces the run's losses exactly
    same = tmp_path / "same"
    main(["solve", "--config", str(run / "config.json"), "--out", str(same)])
    assert json.loads((same / "metrics.json").read_text())["final_losses"] == metrics["final_losses"]

    loaded = load_run(run)
    assert loaded.problem.params() == Wave1D(c=2.0).params() and loaded.step == 4
    assert loaded.metrics["rel_l2"] == metrics["rel_l2"]


def test_solve_resume_from_folder_continues(tmp_path, capsys):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--steps", "4", "--out", str(run), *TINY])
    capsys.readouterr()
    main(["solve", "--resume", str(run), "--steps", "7"])  # no flags retyped
    assert "resumed from step 4" in capsys.readouterr().out
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 7
    assert read_config(run)["options"]["width"] == 8
    with pytest.raises(SystemExit, match=r"--resume .*run: these options cannot change when a run resumes: "
                                         r"--width 16 \(the run has 8\)"):
        main(["solve", "--resume", str(run), "--width", "16"])
    assert read_config(run)["options"]["width"] == 8  # a refused resume leaves the config alone


def test_out_holding_a_run_is_refused(tmp_path):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--steps", "2", "--out", str(run), *TINY])
    with pytest.raises(SystemExit, match=r"--out .*run already holds a run \(config\.json, checkpoint\.pt.*"
                                         r"give --resume .* --overwrite"):
        main(["solve", "poisson2d", "--steps", "2", "--out", str(run), *TINY])
    main(["solve", "poisson2d", "--steps", "3", "--out", str(run), "--overwrite", *TINY])
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3


def test_time_limit_option(tmp_path):
    run = tmp_path / "run"
    main(["solve", "poisson2d", "--steps", "100000", "--time-limit", "0.5", "--out", str(run), *TINY])
    assert load_checkpoint(run / "checkpoint.pt")["step"] < 100000


# ----- divergence ----------------------------------------------------------------------------
def test_diverging_run_stops_with_the_fix():
    net = build_net(Poisson2D(), "siren", width=16, depth=2)
    with pytest.raises(FloatingPointError, match=r"diverging at step \d+ \(adam\): the loss .* above 10000 x its "
                                                 r"best .*Lower the learning rate \(--lr\) or the omega"):
        train(Poisson2D(), net, steps=200, lr=1.0, batch=64, progress=False)


def test_divergence_guard_can_be_off():
    net = build_net(Poisson2D(), "siren", width=16, depth=2)
    result = train(Poisson2D(), net, steps=40, lr=1.0, batch=64, progress=False, divergence=None)
    assert result.history[-1]["loss"] > 1e4


def test_gauss_newton_rejections_do_not_trip_the_guard():
    """Nearly undamped trials are rejected and the point restored; the guard sees only
    the kept points (a factor just above 1 would trip on any reported growth)."""
    problem = Poisson2D()
    net = _net().double()
    result = train(problem, net, stages=[GaussNewton(12, batch=64, damping=1e-12)], batch=64, progress=False,
                   log_every=1, divergence=1.0001)
    losses = [row["loss"] for row in result.history]
    assert {row["accepted"] for row in result.history} == {0, 1}  # rejections happened
    assert all(b <= a for a, b in zip(losses, losses[1:]))


def test_cli_divergence_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"training stopped: diverging at step \d+"):
        main(["solve", "poisson2d", "--steps", "200", "--lr", "1", "--out", str(tmp_path / "r"),
              "--width", "16", "--depth", "2", "--batch", "64", "--resolution", "9", "--quiet"])


def test_adam_stage_divergence_setting_checked():
    with pytest.raises(ValueError, match=r"divergence must be a finite factor > 1 or None, got divergence=0\.5"):
        train(Poisson2D(), _net(), stages=[Adam(1)], divergence=0.5, progress=False)


def test_resume_refuses_another_runs_settings(checkpoint):
    """What a resume cannot change is compared with the checkpoint's run and every
    difference listed: seed, batch, dtype, a stage setting; more steps are allowed."""
    kw = dict(batch=32, progress=False, resume=checkpoint)
    with pytest.raises(CheckpointError, match=r"another run: batch: checkpoint 32, this run 64; seed: checkpoint 0, "
                                              r"this run 7"):
        train(Poisson2D(), _net(), steps=4, **{**kw, "batch": 64}, seed=7)
    with pytest.raises(CheckpointError, match=r"dtype: checkpoint \['torch.float32'\], this run \['torch.float64'\]"):
        train(Poisson2D(), _net().double(), steps=4, **kw)
    with pytest.raises(CheckpointError, match=r"stage 0 \(adam\) lr: checkpoint None, this run 0.05"):
        train(Poisson2D(), _net(), stages=[Adam(4, lr=0.05)], **kw)
    assert train(Poisson2D(), _net(), steps=6, **kw).steps_done == 6
