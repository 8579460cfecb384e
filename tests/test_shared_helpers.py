"""The helpers the package has one of: the atomic write and build_net."""
import os

import pytest

from pinn_sine._io import atomic_write, write_text
from pinn_sine.nets import NET_NAMES, Finer, MetaSin, Sine, Tanh, build_net
from pinn_sine.problems import Poisson2D


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    assert write_text(path, "first") == path and path.read_text() == "first"

    def broken(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]  # no temp file left


def test_atomic_write_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640


def test_build_net_first_omega_rule_and_names():
    problem = Poisson2D()
    siren = build_net(problem, "siren", width=8, depth=1)
    assert isinstance(siren.activations[0], Sine) and siren.activations[0].omega == problem.default_first_omega
    assert build_net(problem, "finer", width=8, depth=1, first_omega=2.0).activations[0].omega == 2.0
    assert isinstance(build_net(problem, "finer", width=8, depth=1).activations[0], Finer)
    # activations without an omega take no first-layer omega
    assert isinstance(build_net(problem, "metasin", width=8, depth=1, K=3).activations[0], MetaSin)
    fourier = build_net(problem, "fourier-tanh", width=8, depth=1)
    assert isinstance(fourier.activations[0], Tanh) and fourier.encoding is not None
    assert set(NET_NAMES) == {"siren", "finer", "metasin", "tanh", "relu", "fourier-tanh"}
    with pytest.raises(ValueError, match=r'Invalid activation "gelu". Must be one of \[\'siren\''):
        build_net(problem, "gelu")
    with pytest.raises(ValueError, match=r"activation tanh does not take \['K'\]"):
        build_net(problem, "tanh", K=3)
