"""A full disk fails cleanly (issue 25, item 1): every write path raises an OSError naming
the file and the OS reason ("cannot write PATH: No space left on device"), leaves the
earlier file intact and no temp file, and never crashes the interpreter (h5py writing a
file of its own died by a signal in its cleanup; torch.save said "basic_ios::clear").
The reference cache warns and goes on uncached.

The simulated ENOSPC replaces the one low-level write of ``pinn_sine._io`` and always
runs; the real one fills a 1 MiB tmpfs and runs where the test may mount one (root)."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pinn_sine import _io
from pinn_sine._io import WriteError, write_text
from pinn_sine.checkpoint import load_checkpoint, save_checkpoint
from pinn_sine.validation import ReferenceField, cache_dir, load_reference, save_reference
from pinn_sine.validation.store import cached_reference, reference_with_info


def _ref(n=16, seed=0, params=None) -> ReferenceField:
    rng = np.random.default_rng(seed)
    return ReferenceField(problem="demo", params=params or {"n": n, "seed": seed},
                          coords={"x": np.linspace(0.0, 1.0, n), "y": np.linspace(0.0, 1.0, n)},
                          fields={"u": rng.standard_normal((n, n))}, solver="fd5-dst", order=2,
                          spacing={"x": 1 / (n - 1), "y": 1 / (n - 1)})


@pytest.fixture
def full_disk(monkeypatch):
    """The disk fills after ``room`` bytes (1024 by default): the low-level write writes up to
    that, then raises OSError(ENOSPC) as os.write does."""
    state = {"room": 1024, "calls": 0}

    def write(fd, data):
        state["calls"] += 1
        if state["room"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[:state["room"]]))
        state["room"] -= n
        return n

    monkeypatch.setattr(_io, "_os_write", write)
    return state


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _check_error(err: OSError, path: Path) -> None:
    assert isinstance(err, WriteError) and isinstance(err, OSError)
    assert err.errno == errno.ENOSPC and err.filename == str(path)
    assert str(err) == f"cannot write {path}: No space left on device"


def test_save_reference_full_disk(tmp_path, full_disk):
    path = tmp_path / "ref.h5"
    full_disk["room"] = 10**9
    first = _ref(seed=0)
    save_reference(first, path)
    before = path.read_bytes()
    full_disk["room"] = 1024
    with pytest.raises(OSError) as info:
        save_reference(_ref(n=64, seed=1), path)
    _check_error(info.value, path)
    assert full_disk["calls"] >= 2  # it wrote part of the file before the disk was full
    assert _names(tmp_path) == ["ref.h5"]  # no temp file
    assert path.read_bytes() == before
    back = load_reference(path, expect_hash=first.hash)
    np.testing.assert_array_equal(back.fields["u"], first.fields["u"])


def test_save_reference_full_disk_new_file(tmp_path, full_disk):
    path = tmp_path / "sub" / "prediction.h5"
    with pytest.raises(OSError, match=r"cannot write .*prediction\.h5: No space left on device"):
        save_reference(_ref(n=64), path, kind="prediction")
    assert _names(path.parent) == []


def test_cache_full_disk_warns_and_goes_on(full_disk):
    ref = _ref(n=64)
    calls = []

    def compute():
        calls.append(1)
        return ref

    with pytest.warns(RuntimeWarning, match=r"cannot write the reference cache at .*demo-.*\.h5 \(OSError: cannot "
                                            r"write .*: No space left on device\); using the computed") as record:
        got = cached_reference("demo", ref.params, compute)
    assert len(record) == 1 and got is ref and calls == [1]
    assert _names(cache_dir()) == []  # nothing half-written in the cache
    full_disk["room"] = 10**9  # space again: the next call computes and stores it
    cached_reference("demo", ref.params, compute)
    assert calls == [1, 1] and len(list(cache_dir().glob("demo-*.h5"))) == 1


def test_problem_reference_full_disk(full_disk):
    from pinn_sine.problems import Poisson2D

    with pytest.warns(RuntimeWarning, match="No space left on device"):
        ref, info = reference_with_info(Poisson2D(), 9)
    assert info.source == "computed" and not info.stored and ref.grid_shape == (9, 9)
    assert _names(cache_dir()) == []


def _checkpoint(path, net, step):
    return save_checkpoint(path, step=step, net=net, stage=0, stage_step=step, stages=[{}],
                           generator=torch.Generator().manual_seed(0),
                           meta={"history": [], "elapsed": 0.0, "stages": [{"stage": "adam", "steps": step}],
                                 "problem": "demo", "problem_params": {}, "net": {}})


def test_save_checkpoint_full_disk(tmp_path, full_disk):
    path = tmp_path / "checkpoint.pt"
    net = torch.nn.Linear(64, 64)
    full_disk["room"] = 10**9
    _checkpoint(path, net, 5)
    before = path.read_bytes()
    full_disk["room"] = 1024
    with torch.no_grad():
        net.weight.add_(1.0)
    with pytest.raises(OSError) as info:
        _checkpoint(path, net, 6)
    _check_error(info.value, path)
    assert _names(tmp_path) == ["checkpoint.pt"] and path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 5


def test_write_text_full_disk(tmp_path, full_disk):
    path = tmp_path / "config.json"
    full_disk["room"] = 10**9
    write_text(path, "{}")
    full_disk["room"] = 3
    with pytest.raises(OSError) as info:
        write_text(path, '{"a": 1}')
    _check_error(info.value, path)
    assert path.read_text() == "{}" and _names(tmp_path) == ["config.json"]


def test_write_error_pickles():
    import pickle

    err = WriteError("/x/y.h5", OSError(errno.ENOSPC, "No space left on device"))
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, WriteError) and str(back) == str(err) and back.errno == errno.ENOSPC


# ----- a real full disk ------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs at tmp_path/small; skipped where it cannot be mounted (not root, no
    mount privilege in the container)."""
    where = tmp_path / "small"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small file system")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


PRELUDE = textwrap.dedent("""
    import sys, warnings
    import numpy as np, torch
    from pinn_sine.validation import ReferenceField, load_reference, save_reference
    from pinn_sine.validation.store import cached_reference
    from pinn_sine.checkpoint import load_checkpoint, save_checkpoint
    disk = sys.argv[1]

    def ref(n, seed=0):  # random float64: incompressible, 8 n^2 bytes
        rng = np.random.default_rng(seed)
        return ReferenceField(problem="demo", params={"n": n}, coords={"x": np.linspace(0, 1, n),
                              "y": np.linspace(0, 1, n)}, fields={"u": rng.standard_normal((n, n))},
                              solver="fd5-dst", order=2, spacing={"x": 1.0, "y": 1.0})

    def checkpoint(path, net, step):
        save_checkpoint(path, step=step, net=net, stage=0, stage_step=step, stages=[{}], generator=torch.Generator(),
                        meta={"history": [], "elapsed": 0.0, "stages": [{"stage": "adam", "steps": step}],
                              "problem": "demo", "problem_params": {}, "net": {}})
""")

CHILDREN = {
    # an uncaught WriteError: a traceback and status 1, the earlier file intact
    "save_reference": """
        save_reference(ref(16), disk + "/ref.h5")
        save_reference(ref(600), disk + "/ref.h5")  # 2.9 MB
    """,
    # the documented cache behaviour: warn, return the computed field, status 0
    "cache": """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            big = ref(600)
            got = cached_reference("demo", big.params, lambda: big)
        assert got is big, got
        assert len(caught) == 1 and "No space left on device" in str(caught[0].message), caught
        print("warned:", caught[0].message)
    """,
    "checkpoint": """
        checkpoint(disk + "/checkpoint.pt", torch.nn.Linear(8, 8), 1)
        checkpoint(disk + "/checkpoint.pt", torch.nn.Linear(600, 600), 2)  # 1.4 MB
    """,
}


@pytest.mark.parametrize("case", sorted(CHILDREN))
def test_real_full_disk(small_disk, case):
    script = PRELUDE + textwrap.dedent(CHILDREN[case])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PINN_SINE_CACHE": str(small_disk / "cache")}
    done = subprocess.run([sys.executable, "-c", script, str(small_disk)], capture_output=True, text=True,
                          timeout=240, env=env)
    assert done.returncode >= 0, f"killed by signal {-done.returncode}:\n{done.stderr[-3000:]}"
    if case == "cache":
        assert done.returncode == 0, done.stderr[-3000:]
        assert "cannot write the reference cache" in done.stdout and "No space left on device" in done.stdout
        assert _names(small_disk / "cache") == []
        return
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    name = "ref.h5" if case == "save_reference" else "checkpoint.pt"
    assert last == f"pinn_sine._io.WriteError: cannot write {small_disk}/{name}: No space left on device", last
    assert _names(small_disk) == [name]  # the earlier file, no temp
    if case == "save_reference":
        assert load_reference(small_disk / name).grid_shape == (16, 16)
    else:
        assert load_checkpoint(small_disk / name)["step"] == 1
