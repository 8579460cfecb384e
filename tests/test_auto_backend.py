"""The automatic choice of the compiled kernel backend (pinn_sine.kernels.auto_backend):
its decisions from the measured break-even, without timing anything."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine.kernels import auto_backend, dispatch

F32_STEPS, F32_CASE, F32_OVERHEAD, F32_SAVING = dispatch.break_even(torch.float32)
#: the first step count that is long enough for float32 SIREN/FINER on the CPU
LONG = math.ceil(dispatch.SAFETY * F32_STEPS) + 1


@pytest.fixture
def compiler(monkeypatch):
    """A machine where torch.compile can build the programs, whatever this one has."""
    monkeypatch.setattr(dispatch, "compile_unavailable", lambda: None)


def _choose(steps=LONG, device="cpu", families=("siren",), dtype=torch.float32):
    return auto_backend(device=device, steps=steps, families=families, dtype=dtype)


def test_measured_float32_break_even_is_finite_and_positive():
    assert 0 < F32_STEPS < math.inf
    assert F32_OVERHEAD > 0 and F32_SAVING > 0


@pytest.mark.parametrize("families", [("siren",), {"finer"}, ("sine",), ("SIREN", "finer")])
def test_long_cpu_run_of_siren_or_finer_compiles(compiler, families):
    backend, reason = _choose(families=families)
    assert backend == "compiled"
    assert reason.startswith(f"compiled: {LONG} Adam steps > ")
    assert f"break-even ~{F32_STEPS:.0f} steps" in reason
    assert f"({F32_CASE}: compile ~{F32_OVERHEAD:.0f} s cold, saves ~{F32_SAVING * 1e3:.1f} ms/step)" in reason


def test_dtype_may_be_named(compiler):
    assert _choose(dtype="float32")[0] == "compiled"
    with pytest.raises(ValueError, match=r"dtype must be a torch.dtype or its name.*'float33'"):
        _choose(dtype="float33")


@pytest.mark.parametrize("steps", [0, 100, LONG - 1])
def test_short_run_stays_native_up_to_the_safety_margin(compiler, steps):
    backend, reason = _choose(steps=steps)
    assert backend is None
    assert reason.startswith(f"native: {steps} Adam steps <= {dispatch.SAFETY:g} x break-even")


def test_short_run_does_not_probe_the_compiler(monkeypatch):
    def probe():
        raise AssertionError("compile_unavailable() called for a run that stays native anyway")

    monkeypatch.setattr(dispatch, "compile_unavailable", probe)
    assert _choose(steps=10)[0] is None
    assert _choose(families=("metasin",))[0] is None
    assert _choose(device="cuda")[0] is None


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_cuda_keeps_the_rule(compiler, device):
    backend, reason = _choose(steps=10**6, device=device)
    assert backend is None
    assert "Triton" in reason


def test_other_devices_stay_native(compiler):
    backend, reason = _choose(steps=10**6, device="mps")
    assert backend is None
    assert "CPU only" in reason


@pytest.mark.parametrize("families, named", [(("metasin",), "metasin"), (("tanh",), "tanh"),
                                              (("fourier-tanh",), "fourier-tanh"), (("siren", "relu"), "relu")])
def test_families_without_a_compiled_node_stay_native(compiler, families, named):
    backend, reason = _choose(steps=10**6, families=families)
    assert backend is None
    assert reason.startswith("native: no compiled jet node for") and named in reason


def test_float64_follows_its_own_measurement(compiler):
    measured = dispatch.break_even(torch.float64)
    assert measured is not None
    backend, reason = _choose(steps=500, dtype=torch.float64)  # the README's Gauss-Newton recipe
    assert backend is None and reason.startswith("native:")
    if math.isinf(measured[0]):
        assert "not faster" in reason
        assert _choose(steps=10**6, dtype=torch.float64)[0] is None


def test_a_dtype_whose_compiled_steps_are_slower_stays_native(compiler, monkeypatch):
    monkeypatch.setitem(dispatch.BREAK_EVEN_CASES, torch.float64, (("case A", 20.0, 0.01), ("case B", 25.0, -0.002)))
    backend, reason = _choose(steps=10**6, dtype=torch.float64)
    assert backend is None
    assert reason == ("native: compiled torch.float64 steps were not faster (case B: -2.0 ms/step against a 25 s "
                      "cold compile)")


def test_the_largest_break_even_decides(compiler, monkeypatch):
    monkeypatch.setitem(dispatch.BREAK_EVEN_CASES, torch.float32, (("small", 10.0, 0.02), ("large", 30.0, 0.01)))
    assert dispatch.break_even(torch.float32) == (3000.0, "large", 30.0, 0.01)
    assert _choose(steps=6000)[0] is None
    backend, reason = _choose(steps=6001)
    assert backend == "compiled"
    assert reason == ("compiled: 6001 Adam steps > 2 x break-even ~3000 steps (large: compile ~30 s cold, "
                      "saves ~10.0 ms/step)")


def test_unmeasured_dtype_stays_native(compiler):
    backend, reason = _choose(steps=10**6, dtype=torch.bfloat16)
    assert backend is None
    assert "not measured for torch.bfloat16" in reason


def test_without_a_working_torch_compile_stays_native(monkeypatch):
    monkeypatch.setattr(dispatch, "compile_unavailable",
                        lambda: "no C++ compiler for torch.compile (InvalidCxxCompiler; it looks for $CXX or g++)")
    backend, reason = _choose(steps=10**6)
    assert backend is None
    assert reason == "native: no C++ compiler for torch.compile (InvalidCxxCompiler; it looks for $CXX or g++)"


def test_compile_unavailable_reports_a_missing_compiler(monkeypatch):
    from torch._inductor import cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler

    def missing():
        raise InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", missing)
    assert "no C++ compiler for torch.compile (InvalidCxxCompiler" in dispatch.compile_unavailable.__wrapped__()


def test_compile_unavailable_reports_missing_python_headers(monkeypatch, tmp_path):
    from torch._inductor import cpp_builder

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", lambda: "g++")
    monkeypatch.setattr(dispatch.sysconfig, "get_path", lambda name: str(tmp_path))
    assert dispatch.compile_unavailable.__wrapped__() == (
        f"no Python.h in {tmp_path} for torch.compile (install the Python development headers)")
    (tmp_path / "Python.h").write_text("")
    assert dispatch.compile_unavailable.__wrapped__() is None


@pytest.mark.parametrize("steps", [-1, True, 2.5, "2000"])
def test_bad_steps_raise(steps):
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0"):
        _choose(steps=steps)


def test_no_family_raises():
    with pytest.raises(ValueError, match=r"families is empty"):
        _choose(families=())
