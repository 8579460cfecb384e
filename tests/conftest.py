"""Shared fixtures: every test gets its own reference cache, never ~/.cache."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point PINN_SINE_CACHE at a fresh folder for each test."""
    cache = tmp_path_factory.mktemp("pinn_sine_cache")
    monkeypatch.setenv("PINN_SINE_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _sigint_handler_left_as_found():
    """A test must leave Python's SIGINT handler as it found it: training installs its own
    (Ctrl-C stops after the step) and must put the default back however it ends, or every
    later Ctrl-C test of the session would see a foreign handler."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before:
        signal.signal(signal.SIGINT, before)
        pytest.fail(f"the test left SIGINT handled by {after!r} (it found {before!r})")


@pytest.fixture
def one_thread():
    """One torch thread for the test: small nets on a shared, loaded CPU run an order of
    magnitude faster on one thread than with two contending."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def interrupted_poisson():
    """A Poisson2D class whose sampler raises KeyboardInterrupt (a killed job) on the
    draw after ``stop_after`` draws: ``interrupted_poisson(stop_after=30)``."""
    from pinn_sine.problems import Poisson2D

    class InterruptedPoisson(Poisson2D):
        def __init__(self, stop_after):
            super().__init__()
            self.stop_after, self.calls = stop_after, 0

        def sample(self, n, generator, *, progress=1.0):
            self.calls += 1
            if self.calls > self.stop_after:
                raise KeyboardInterrupt
            return super().sample(n, generator, progress=progress)

    return InterruptedPoisson


@pytest.fixture(scope="session")
def launch_ranks():
    """Run a test file as ``world`` worker processes with torchrun's environment (RANK,
    WORLD_SIZE, ... on a free loopback port, gloo, one thread each), each given ``out``
    as its argument; fails with every worker's output unless all exit 0:
    ``launch_ranks(__file__, tmp_path, 2)``."""
    import os
    import socket
    import subprocess
    import sys

    def launch(script, out, world: int, timeout: float = 100) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs = []
        for rank in range(world):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
            procs.append(subprocess.Popen([sys.executable, str(script), str(out)], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
        logs = []
        for p in procs:
            try:
                logs.append(p.communicate(timeout=timeout)[0])
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
        assert all(p.returncode == 0 for p in procs), "\n".join(logs)

    return launch


@pytest.fixture(scope="module")
def heat1d():
    """examples/heat1d.py as a module (a problem written with the public API only)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "heat1d.py"
    spec = importlib.util.spec_from_file_location("heat1d_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
