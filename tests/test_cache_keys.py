"""Cache keys of user callables (issue 25, item 2): a callable's key covers what decides
its behaviour beyond its source text (closure cells, defaults, the globals it reads), so
two problems with different user solutions never share a cached reference; a callable
that cannot be identified exactly skips the cache and says so."""
from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pinn_sine.problems import Poisson2D
from pinn_sine.problems.base import describe_callable
from pinn_sine.problems.poisson import two_mode_solution
from pinn_sine.validation.store import cache_dir, reference_with_info

RESOLUTION = 9


def mode(k):
    """A factory of manufactured solutions: its closures differ only in the captured k."""
    def u(x, y):
        return torch.sin(k * math.pi * x) * torch.sin(k * math.pi * y)
    return u


def with_default(a):
    def u(x, y, a=a):
        return torch.sin(a * math.pi * x) * torch.sin(math.pi * y)
    return u


def with_kwdefault(a):
    def u(x, y, *, a=a):
        return torch.sin(a * math.pi * x) * torch.sin(math.pi * y)
    return u


SCALE = 1.0
WEIGHTS = np.array([1.0, 0.5])


def reads_globals(x, y):
    return SCALE * (WEIGHTS[0] * torch.sin(math.pi * x) + WEIGHTS[1] * torch.sin(2 * math.pi * x)) * torch.sin(
        math.pi * y)


def calls_helper(x, y):
    return reads_globals(x, y) * 2.0


class Opaque:
    """An object whose state a key cannot pin down (a stand-in for a user's config object)."""

    amplitude = 1.0


OPAQUE = Opaque()


def reads_object(x, y):
    return OPAQUE.amplitude * torch.sin(math.pi * x) * torch.sin(math.pi * y)


def test_closures_of_one_factory_differ():
    assert describe_callable(mode(1)) != describe_callable(mode(2))
    assert describe_callable(mode(1)) == describe_callable(mode(1))
    assert describe_callable(mode(1)).startswith("mode.<locals>.u:")
    assert describe_callable(mode(1)) != describe_callable(mode(1.0))  # 1 and 1.0 are different values


@pytest.mark.parametrize("factory", [with_default, with_kwdefault])
def test_default_arguments_enter_the_key(factory):
    assert describe_callable(factory(1.0)) != describe_callable(factory(2.0))
    assert describe_callable(factory(1.0)) == describe_callable(factory(1.0))


def test_globals_enter_the_key(monkeypatch):
    before, helper = describe_callable(reads_globals), describe_callable(calls_helper)
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 2.0)
    assert describe_callable(reads_globals) != before
    assert describe_callable(calls_helper) != helper  # through the function it calls
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 1.0)
    assert describe_callable(reads_globals) == before
    monkeypatch.setattr(sys.modules[__name__], "WEIGHTS", np.array([1.0, 0.25]))
    assert describe_callable(reads_globals) != before


def test_arrays_and_tensors_by_digest():
    def factory(c):
        return lambda x, y: c[0] * x * y

    assert describe_callable(factory(torch.tensor([1.0]))) == describe_callable(factory(torch.tensor([1.0])))
    assert describe_callable(factory(torch.tensor([1.0]))) != describe_callable(factory(torch.tensor([2.0])))
    assert describe_callable(factory(torch.tensor([1.0]))) != describe_callable(factory(torch.tensor([1.0],
                                                                                               dtype=torch.float64)))
    assert describe_callable(factory(np.array([1.0]))) != describe_callable(factory(np.array([3.0])))


def test_two_lambdas_on_one_line_differ():
    f, g = lambda x, y: x + y, lambda x, y: x * y  # noqa: E731
    assert describe_callable(f) != describe_callable(g)


def test_partial_and_builtins():
    assert describe_callable(functools.partial(with_default(1.0), a=2.0)) != describe_callable(
        functools.partial(with_default(1.0), a=3.0))
    assert describe_callable(torch.atan2) is not None


def test_plain_function_keeps_its_source_key():
    # reads only modules under their own names: the key of its source alone, as before
    # (tests/data/poisson2d.h5 stores it)
    assert describe_callable(two_mode_solution) == "two_mode_solution:157a7b948990e967"


def test_closures_get_their_own_cached_references():
    p1, p2 = Poisson2D(u=mode(1)), Poisson2D(u=mode(2))
    assert p1.params()["u_fn"] != p2.params()["u_fn"]
    r1, info1 = reference_with_info(p1, RESOLUTION)
    r2, info2 = reference_with_info(p2, RESOLUTION)
    assert info1.source == info2.source == "computed" and info1.stored and info2.stored
    assert info1.path != info2.path
    assert not np.allclose(r1.fields["u"], r2.fields["u"])
    # each field is its own problem's solution (mode 2 vanishes at the nodes of x = +-0.5, 0)
    x, y = np.meshgrid(r2.coords["x"], r2.coords["y"], indexing="ij")
    exact2 = np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y)
    assert np.abs(r2.fields["u"] - exact2).max() < 0.2 * np.abs(exact2).max()
    again, info = reference_with_info(Poisson2D(u=mode(2)), RESOLUTION)
    assert info.source == "cache" and np.array_equal(again.fields["u"], r2.fields["u"])


def test_default_arguments_get_their_own_cached_references():
    r1, _ = reference_with_info(Poisson2D(u=with_default(1.0)), RESOLUTION)
    r2, info = reference_with_info(Poisson2D(u=with_default(2.0)), RESOLUTION)
    assert info.source == "computed" and not np.allclose(r1.fields["u"], r2.fields["u"])


KEY_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import test_cache_keys as t
    from pinn_sine.problems.base import describe_callable
    print(json.dumps([describe_callable(t.mode(1)), describe_callable(t.mode(2)),
                      describe_callable(t.with_default(1.0)), describe_callable(t.calls_helper)]))
""")


def test_keys_are_stable_across_processes():
    script = KEY_SCRIPT.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONHASHSEED": "random", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    here = [describe_callable(mode(1)), describe_callable(mode(2)), describe_callable(with_default(1.0)),
            describe_callable(calls_helper)]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_unidentifiable_capture_skips_the_cache():
    class Config:
        def __init__(self, k):
            self.k = k

    def factory(cfg):
        return lambda x, y: torch.sin(cfg.k * math.pi * x) * torch.sin(math.pi * y)

    u = factory(Config(1))
    with pytest.warns(RuntimeWarning, match=r"closure variable 'cfg' .* is a .*Config object.*without the cache"):
        assert describe_callable(u) is None
    problem = Poisson2D(u=u)
    assert problem.params()["u_fn"] is None
    ref, info = reference_with_info(problem, RESOLUTION)
    assert info.source == "computed" and not info.stored and info.path is None
    assert not list(cache_dir().glob("*.h5"))
    assert ref.fields["u"].shape == (RESOLUTION, RESOLUTION)


def test_unidentifiable_global_skips_the_cache():
    with pytest.warns(RuntimeWarning, match=r"global 'OPAQUE' read by reads_object is a .*Opaque object"):
        assert describe_callable(reads_object) is None
    _, info = reference_with_info(Poisson2D(u=reads_object), RESOLUTION)
    assert not info.stored and not list(cache_dir().glob("*.h5"))


def test_no_source_skips_the_cache():
    u = eval("lambda x, y: torch.sin(math.pi * x) * torch.sin(math.pi * y)", {"torch": torch, "math": math})
    with pytest.warns(RuntimeWarning, match="source of <lambda> is not available"):
        assert describe_callable(u) is None
