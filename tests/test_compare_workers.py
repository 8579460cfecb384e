"""compare's worker processes die with the process that started them (issue 25): a
killed `pinn-sine compare --jobs N` leaves no worker training on and writing cells into a
table nobody is building, and a rerun finishes the table."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pinn_sine.compare import compare
from pinn_sine.problems.registry import PROBLEMS, load_problem_module, unregister_problem

#: a user problem whose first draw in a process, while COMPARE_TEST_MARKS names a folder,
#: leaves the process's pid there and then sleeps: a cell that is surely mid-way when the
#: test kills the parent, and could only finish (and write its cell) long after
SLOW_PROBLEM = '''
import os
import time
from pathlib import Path

from pinn_sine.problems import Poisson2D, register_problem


class SlowPoisson(Poisson2D):
    name = "slow-poisson"
    default_resolution = 17

    def sample(self, n, generator, *, progress=1.0):
        marks = os.environ.get("COMPARE_TEST_MARKS")
        if marks:
            Path(marks, str(os.getpid())).touch()
            time.sleep(60)
        return super().sample(n, generator, progress=progress)


register_problem(SlowPoisson)
'''


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped by its new parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see which processes live")
def test_workers_die_with_a_killed_parent_and_a_rerun_finishes_the_table(tmp_path):
    module = tmp_path / "slow_problem.py"
    module.write_text(SLOW_PROBLEM)
    marks, out = tmp_path / "marks", tmp_path / "cmp"
    marks.mkdir()
    env = {**os.environ, "COMPARE_TEST_MARKS": str(marks), "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen([sys.executable, "-m", "pinn_sine.cli", "--module", str(module), "compare",
                               "--problems", "slow-poisson", "--activations", "siren,tanh", "--steps", "2",
                               "--width", "4", "--depth", "1", "--jobs", "2", "--out", str(out), "--quiet"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2:  # both workers are inside a cell
            assert parent.poll() is None, parent.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers never started their cells"
            time.sleep(0.05)
            workers = [int(p.name) for p in marks.iterdir()]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers)), f"workers {[p for p in workers if _alive(p)]} outlived their parent"
        time.sleep(0.5)
        assert not list((out / "cells").glob("*.json"))  # nothing was written after the kill
    finally:
        parent.stderr.close()
        for pid in workers:  # without the fix: end them here rather than let them write
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # A rerun (here in this process, without the sleeping draws) finishes the table.
    assert "slow-poisson" not in PROBLEMS
    load_problem_module(str(module))
    try:
        rows = compare(["slow-poisson"], ["siren", "tanh"], [0], steps=2, width=4, depth=1, out=str(out),
                       progress=False, modules=[str(module)])
    finally:
        unregister_problem("slow-poisson")
    assert sorted(r["activation"] for r in rows) == ["siren", "tanh"]
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 2 and all(json.loads(p.read_text())["status"] == "ok" for p in cells)
    assert (out / "results.md").exists() and not list(out.rglob("*.tmp"))
