"""What a new user meets in the first hour: threads, run folders, interrupts, stop
reasons, user problems on the command line, headline errors and small messages."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pinn_sine import cli, train
from pinn_sine.nets import MLP, Sine
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import PROBLEMS, Poisson2D, Wave1D, unregister_problem
from pinn_sine.train import TrainingInterrupted

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--width", "8", "--depth", "1", "--batch", "64", "--resolution", "33", "--quiet"]


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _cli(*args, cwd, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "pinn_sine.cli", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=240, **kw)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# ----- threads --------------------------------------------------------------------------------
def test_a_cli_run_uses_one_thread_by_default(tmp_path):
    """OMP_NUM_THREADS=2 in the environment, no --threads: the run's torch uses 1 thread
    (measured inside the process) and config.json records it."""
    out = tmp_path / "run"
    proc = _cli("solve", "poisson2d", "--steps", "2", *SMALL, "--out", str(out), cwd=tmp_path,
                env=_env(OMP_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threads"] == 1 and metrics["torch_threads"] == 1
    assert json.loads((out / "config.json").read_text())["options"]["threads"] == 1
    assert "1 thread;" in proc.stdout


@pytest.mark.parametrize("how", ["flag", "env"])
def test_threads_are_chosen_by_flag_or_environment(tmp_path, monkeypatch, restore_threads, how):
    args = ["solve", "poisson2d", "--steps", "1", *SMALL, "--out", str(tmp_path / "run")]
    if how == "flag":
        args += ["--threads", "2"]
    else:
        monkeypatch.setenv("PINN_SINE_THREADS", "2")
    assert cli.main(args) == 0
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["torch_threads"] == 2


def test_a_bad_thread_count_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("PINN_SINE_THREADS", "many")
    with pytest.raises(SystemExit, match="PINN_SINE_THREADS='many': must be an integer >= 1"):
        cli.main(["solve", "poisson2d", "--steps", "1"])
    with pytest.raises(SystemExit):
        cli.main(["solve", "poisson2d", "--threads", "0"])
    assert "--threads: must be an integer >= 1" in capsys.readouterr().err


# ----- run folders ----------------------------------------------------------------------------
def test_solve_without_out_gets_a_fresh_folder_each_time(tmp_path, monkeypatch, restore_threads):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli.main(["solve", "poisson2d", "--steps", "1", *SMALL]) == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("poisson2d-") for f in folders)
    assert all((f / "metrics.json").exists() for f in folders)


def test_a_config_never_says_where_to_write(tmp_path, monkeypatch, restore_threads):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["solve", "poisson2d", "--steps", "1", *SMALL, "--out", "first"]) == 0
    assert cli.main(["solve", "--config", "first/config.json"]) == 0  # not refused: a new folder
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_a_run_failing_before_its_first_step_leaves_nothing_behind(tmp_path, restore_threads):
    out = tmp_path / "new"
    with pytest.raises(SystemExit, match="unknown loss terms"):
        cli.main(["solve", "poisson2d", "--steps", "5", *SMALL, "--weight", "bondary=10", "--out", str(out)])
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="unknown loss terms"):
        cli.main(["solve", "poisson2d", "--steps", "5", *SMALL, "--weight", "bondary=10", "--out", str(empty)])
    assert empty.is_dir() and not any(empty.iterdir())
    with pytest.raises(SystemExit, match='Invalid activation "sirne"'):
        cli.main(["solve", "poisson2d", "--activation", "sirne", "--out", str(out)])
    assert not out.exists()
    # the folder is free: the corrected command runs there
    assert cli.main(["solve", "poisson2d", "--steps", "2", *SMALL, "--out", str(out)]) == 0


# ----- interrupts and stop reasons ------------------------------------------------------------
class _SignalledPoisson(Poisson2D):
    """Poisson2D that sends this process a real SIGINT while drawing batch ``at``."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def sample(self, n, generator, *, progress=1.0):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().sample(n, generator, progress=progress)


def _net(seed=0):
    torch.manual_seed(seed)
    return MLP(2, 1, width=12, depth=2, activation=Sine(30.0), first_omega=4.0).double()


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler for the test, whatever the suite was launched with (a
    shell's background job starts with SIGINT ignored, and then Python never installs it)."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _sigint_as_default():
    """A child's SIGINT back to the default disposition (see ``default_sigint``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_checkpoints_the_step_and_resumes_bit_identical(tmp_path, default_sigint):
    kw = dict(batch=64, seed=3, progress=False, checkpoint_every=1000)
    stages = lambda: [Adam(40), GaussNewton(6, batch=64)]  # noqa: E731
    full = train(Poisson2D(), _net(), stages=stages(), **kw)
    ck = tmp_path / "ck.pt"
    with pytest.raises(TrainingInterrupted) as stop:
        train(_SignalledPoisson(at=17), _net(), stages=stages(), checkpoint=ck, **kw)
    # the signal arrived during the draw of step 17: that step was finished and saved
    assert stop.value.step == 17 and stop.value.checkpoint == ck and ck.exists()
    assert stop.value.result.stop_reason == "interrupted" and stop.value.result.steps_done == 17
    net = _net()
    resumed = train(Poisson2D(), net, stages=stages(), checkpoint=ck, resume=ck, **kw)
    for a, b in zip(full.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.stop_reason == "completed" and resumed.steps_done == resumed.steps_planned == 46
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_time_limit_and_completion_are_reported():
    res = train(Poisson2D(), _net(), stages=[Adam(10**6, schedule="constant")], batch=32, time_limit=0.3,
                progress=False)
    assert res.stop_reason == "time_limit" and 0 < res.steps_done < res.steps_planned == 10**6
    assert "time limit" in res.stop_message
    res = train(Poisson2D(), _net(), stages=[Adam(3)], batch=32, progress=False)
    assert (res.stop_reason, res.steps_done, res.steps_planned) == ("completed", 3, 3)


def test_divergence_carries_the_result():
    from pinn_sine.train import TrainingDiverged

    with pytest.raises(TrainingDiverged) as err:
        train(Poisson2D(), _net(), stages=[Adam(200, lr=50.0)], batch=32, progress=False, divergence=2.0)
    assert err.value.result.stop_reason == "diverged" and err.value.result.steps_done == err.value.step


def test_ctrl_c_in_a_cli_run(tmp_path):
    """A real SIGINT to a `pinn-sine solve` process: one line with the resume command, exit
    status 130, no traceback, a checkpoint at the step and metrics.json saying why."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pinn_sine.cli", "solve", "poisson2d", "--steps", "200000",
                             *SMALL, "--checkpoint-every", "20", "--out", str(out)], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_default)
    deadline = time.monotonic() + 200
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"continue with: pinn-sine solve --resume {out}" in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stop_reason"] == "interrupted" and 20 <= metrics["steps_done"] < 200000
    from pinn_sine.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoint.pt")["step"] == metrics["steps_done"]


# ----- user problems on the command line ------------------------------------------------------
MODULE = '''
import importlib.util, pathlib
from pinn_sine.problems import register_problem, PROBLEMS
spec = importlib.util.spec_from_file_location("heat1d_for_cli", {path!r})
heat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(heat)
if "heat1d" not in PROBLEMS:
    register_problem(heat.Heat1D)
'''


@pytest.fixture
def user_module(tmp_path):
    path = tmp_path / "userprobs.py"
    path.write_text(MODULE.format(path=str(ROOT / "examples" / "heat1d.py")))
    yield path
    if "heat1d" in PROBLEMS:
        unregister_problem("heat1d")


def test_module_loads_a_users_problem_into_solve(tmp_path, user_module, restore_threads):
    out = tmp_path / "run"
    assert cli.main(["--module", str(user_module), "solve", "heat1d", "--steps", "2", *SMALL[:-3], "--quiet",
                     "--resolution", "17", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["modules"] == [str(user_module)]


def test_module_errors_are_one_line(tmp_path):
    with pytest.raises(SystemExit, match="--module: module nosuchpkg.problems cannot be imported"):
        cli.main(["--module", "nosuchpkg.problems", "problems"])
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(SystemExit, match="registers no problem"):
        cli.main(["--module", str(empty), "problems"])


def test_compare_workers_load_the_module(tmp_path, user_module):
    """Spawned compare workers know only the built-in problems unless handed the module."""
    proc = _cli("--module", str(user_module), "compare", "--problems", "heat1d", "--activations", "siren,tanh",
                "--steps", "3", "--width", "8", "--depth", "1", "--jobs", "2", "--quiet", "--out", "cmp",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cells = sorted(p.name for p in (tmp_path / "cmp" / "cells").glob("*.json"))
    assert len(cells) == 2 and all(c.startswith("heat1d") for c in cells)


# ----- small messages -------------------------------------------------------------------------
def test_a_misspelt_problem_gets_a_suggestion():
    with pytest.raises(SystemExit, match='Invalid problem "poison2d". Did you mean "poisson2d"?'):
        cli.main(["solve", "poison2d"])


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        cli.main(["solve", "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    options = " ".join(text.split()).split(" --")[1:]
    assert len(options) > 40
    for option in options:
        assert option.count("(default") <= 1, option


def test_hard_constraint_repr_reads_as_a_formula():
    text = repr(Wave1D(constraint="hard").hard_constraint())
    assert "(1 - exp(-(t / " in text and "* (4 x (1.0 - x) / 1.0^2))" in text
    assert "- -" not in repr(Poisson2D(constraint="hard").hard_constraint())


def test_float32_gauss_newton_warning_names_the_cli_option():
    net = MLP(2, 1, width=4, depth=1, activation=Sine(30.0), first_omega=4.0)
    with pytest.warns(RuntimeWarning, match="--dtype float64"):
        train(Poisson2D(), net, stages=[GaussNewton(1, batch=16)], batch=16, progress=False)


# ----- run folders are claimed (issue 25) -----------------------------------------------------
def test_a_claimed_folder_is_refused(tmp_path):
    from pinn_sine.runs import RunLock

    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        with pytest.raises(SystemExit, match=f"--out {out} is in use by process {os.getpid()}"):
            cli.main(["solve", "poisson2d", "--steps", "1", *SMALL, "--out", str(out)])
    assert not (out / ".lock").exists() and not (out / "config.json").exists()


def test_a_stale_lock_is_taken_over(tmp_path, restore_threads):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{dead.stdout.strip()} {socket.gethostname()} 0\n")
    assert cli.main(["solve", "poisson2d", "--steps", "1", *SMALL, "--out", str(out)]) == 0
    assert not (out / ".lock").exists()  # released at the end


def test_two_runs_started_together_into_one_folder(tmp_path):
    """However they are timed, one of two solves into one --out is refused."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "pinn_sine.cli", "solve", "poisson2d", "--steps", "30", *SMALL,
            "--out", str(out)]
    procs = [subprocess.Popen(argv, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    refused = next(err for code, err in results if code != 0)
    assert "is in use by process" in refused or "already holds a run" in refused
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps_done"] == 30 and config["options"]["out"] == str(out)


def test_a_stored_config_cannot_steer_writes(tmp_path, monkeypatch, restore_threads):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["solve", "poisson2d", "--steps", "1", *SMALL, "--out", "a"]) == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    config["options"].update(out="../escaped", overwrite=True, resume="a")
    (tmp_path / "edited.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="does not match its digest: it was changed after pinn-sine wrote it"):
        cli.main(["solve", "--config", "edited.json"])
    del config["digest"]  # a deliberate template: used, but it cannot say where to write
    (tmp_path / "evil.json").write_text(json.dumps(config))
    assert cli.main(["solve", "--config", "evil.json"]) == 0
    assert not (tmp_path.parent / "escaped").exists()
    assert [p.name for p in (tmp_path / "runs").iterdir()][0].startswith("poisson2d-")
    with pytest.raises(SystemExit, match="already holds a run"):  # overwrite from the file is ignored
        cli.main(["solve", "--config", "evil.json", "--out", "a"])


# ----- the reference's own error -------------------------------------------------------------
def test_a_reference_limited_error_is_named_with_its_fix():
    from pinn_sine.validation.evaluate import describe_errors, reference_limit

    ref = Poisson2D().reference(resolution=17)
    est = ref.error_estimate
    assert ref.order == 4 and est > 0
    limited = {"rel_l2": 2.0 * est, "rel_l2_exact": est / 10}
    text = reference_limit(limited, ref)
    assert f"({2 * est:.2e}) is within 3x of the reference's own error estimate ({est:.2e}" in text
    wanted = 16 * (est / (est / 100)) ** 0.25  # a tenth of the network's error, at order 4
    n = int(text.split("--resolution ")[1].split()[0])
    assert n >= wanted + 1 and (n - 1) & (n - 2) == 0 and "(now 17)" in text
    assert reference_limit({"rel_l2": 4.0 * est}, ref) is None
    assert describe_errors(limited).startswith(f"rel L2 {est / 10:.2e} vs exact ({2 * est:.2e} vs reference)")


def test_train_warns_when_the_reference_limits_the_error():
    ref = Poisson2D().reference(resolution=17)  # its own error: 3.2e-3
    net = MLP(2, 1, width=24, depth=2, activation=Sine(30.0), first_omega=4.0, seed=0).double()
    with pytest.warns(RuntimeWarning, match="it measures the reference, not the network") as record:
        res = train(Poisson2D(), net, stages=[Adam(300), GaussNewton(40, batch=400)], batch=400,
                    reference=ref, progress=False)
    assert res.final["rel_l2_exact"] < res.final["rel_l2"] < 3 * ref.error_estimate
    assert "--resolution" in str(record[0].message)


def test_the_backend_choice_is_recorded_and_undone(tmp_path, restore_threads):
    """A long run on the CPU gets the compiled backend, a time limit too short to pay back
    the compile keeps it native, and an in-process solve leaves the process's choice as
    it found it."""
    from pinn_sine.kernels import dispatch

    before = dispatch.requested_backend()
    assert cli.main(["solve", "poisson2d", "--steps", "100000", "--time-limit", "0.5", *SMALL,
                     "--out", str(tmp_path / "a")]) == 0
    kernels = json.loads((tmp_path / "a" / "config.json").read_text())["kernels"]
    assert kernels["backend"] == "auto" and "too short to pay back" in kernels["reason"]
    assert dispatch.requested_backend() == before
    assert cli.main(["solve", "poisson2d", "--steps", "2", *SMALL, "--out", str(tmp_path / "b")]) == 0
    assert "break-even" in json.loads((tmp_path / "b" / "metrics.json").read_text())["kernels"]["reason"]


def test_a_write_that_fails_is_one_line(tmp_path, capsys, monkeypatch):
    """ENOSPC (simulated) or an unwritable path: one line naming the file, status 1."""
    import errno

    from pinn_sine import _io

    assert cli.main(["reference", "poisson2d", "--resolution", "9", "--out", "/proc/nope/ref.h5"]) == 1
    assert capsys.readouterr().err.strip() == "pinn-sine: error: cannot write /proc/nope/ref.h5: No such file or " \
                                              "directory"

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_io, "_os_write", full)
    assert cli.main(["reference", "poisson2d", "--resolution", "9", "--out", str(tmp_path / "r.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"pinn-sine: error: cannot write {tmp_path / 'r.h5'}: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_run_files_are_checked_against_their_digests(tmp_path, restore_threads):
    """An edited config.json is refused by --resume, an edited metrics.json by load_run,
    and a prediction.h5 swapped for another run's (or for the reference) by export."""
    import shutil

    from pinn_sine.export import export_run
    from pinn_sine.runs import load_run

    for name in ("a", "b"):
        assert cli.main(["solve", "poisson2d", "--steps", "2", *SMALL, "--out", str(tmp_path / name)]) == 0
    a = tmp_path / "a"
    assert load_run(a).metrics["run_id"] == json.loads((a / "config.json").read_text())["run_id"]
    text = (a / "config.json").read_text()
    (a / "config.json").write_text(text.replace('"seed": 0', '"seed": 7'))
    with pytest.raises(SystemExit, match="does not match its digest"):
        cli.main(["solve", "--resume", str(a), "--steps", "4"])
    (a / "config.json").write_text(text)
    metrics = (a / "metrics.json").read_text()
    (a / "metrics.json").write_text(json.dumps({**json.loads(metrics), "rel_l2": 1e-9}))
    with pytest.raises(ValueError, match="metrics.json does not match its digest"):
        load_run(a)
    (a / "metrics.json").write_text(metrics)
    pytest.importorskip("meshio")
    shutil.copy(tmp_path / "b" / "prediction.h5", a / "prediction.h5")
    with pytest.raises(ValueError, match="is the prediction of another run"):
        export_run(a)
    cli.main(["reference", "poisson2d", "--resolution", "33", "--out", str(a / "prediction.h5")])
    with pytest.raises(ValueError, match="is a reference file, not a network's prediction"):
        export_run(a)


def test_an_export_the_disk_cannot_hold_is_refused_before_writing(tmp_path, monkeypatch, restore_threads):
    """meshio's XDMF writer goes through h5py, which can crash on a full disk: export
    checks the free space first and ends in one line."""
    import shutil
    from collections import namedtuple

    pytest.importorskip("meshio")
    out = tmp_path / "run"
    assert cli.main(["solve", "poisson2d", "--steps", "1", *SMALL, "--out", str(out)]) == 0
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    assert cli.main(["export", str(out), "--format", "xdmf"]) == 1
    assert not list(out.glob("*.xdmf")) and not list(out.glob("poisson2d_fields*"))
