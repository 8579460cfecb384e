"""Metrics as objects (train(metrics=...)) and stall stops (train(stall=Stall(...))),
L-BFGS with fresh batches (LBFGS(resample_every=N)), and their bit-identical resume."""
from __future__ import annotations

import pytest
import torch

from pinn_sine import MaxAbs, RelL2, Stall, train
from pinn_sine.metrics import Callable
from pinn_sine.nets import MLP, Sine
from pinn_sine.optim import LBFGS, Adam
from pinn_sine.problems import Poisson2D
from pinn_sine.train import load_checkpoint
from pinn_sine.validation import evaluate
from pinn_sine.optim.conformance import interrupting


def _net(seed=0):
    return MLP(2, 1, 8, 2, seed=seed, activation=Sine(3.0)).double()


def _weights(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _rows(history, drop=("time", "step_time")):
    return [{k: v for k, v in row.items() if k not in drop} for row in history]


_KilledPoisson = interrupting(Poisson2D)


@pytest.fixture(scope="module")
def ref():
    return Poisson2D().reference(resolution=17)


# ----- metrics ---------------------------------------------------------------------------

def test_user_metric_in_history_matches_a_direct_computation(ref):
    """A paper's absolute RMS error on its own points: logged at every evaluation step
    and only there, equal to the same computation on the weights the net had then (the
    metric keeps a copy of them)."""
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u = Poisson2D().exact_solution(x)
    seen = []

    def rms_paper(net):
        seen.append(_weights(net))
        with torch.no_grad():
            return float((net(x) - u).pow(2).mean().sqrt())

    net = _net()
    r = train(Poisson2D(), net, stages=[Adam(20, lr=1e-2)], batch=32, progress=False, reference=ref,
              eval_every=10, log_every=5, metrics=[rms_paper])
    rows = [row for row in r.history if "rms_paper" in row]
    assert [row["step"] for row in rows] == [10, 20]
    assert all("rel_l2" in row for row in rows) and not any("rms_paper" in row for row in r.history
                                                            if row["step"] % 10)
    probe = _net(seed=5)
    for row, weights in zip(rows, seen):
        probe.load_state_dict(weights)
        with torch.no_grad():
            assert row["rms_paper"] == float((probe(x) - u).pow(2).mean().sqrt())
    assert r.metrics["rms_paper"] == rows[-1]["rms_paper"]
    assert r.metrics["rel_l2"] == rows[-1]["rel_l2"] == r.final["rel_l2"]


def test_metric_object_and_callable_wrapper_without_reference():
    class Region:
        name = "u_corner"

        def __call__(self, net):
            with torch.no_grad():
                return net(torch.tensor([[0.1, 0.1]], dtype=torch.float64))  # a one-element tensor

    r = train(Poisson2D(), _net(), stages=[Adam(4, lr=1e-2)], batch=16, progress=False, eval_every=2, log_every=1,
              metrics=[Region(), Callable("const", lambda net: 2)])
    assert [row.get("u_corner") is not None for row in r.history] == [False, True, False, True]
    assert r.metrics["const"] == 2.0 and set(r.metrics) == {"u_corner", "const"}
    assert "rel_l2" not in r.history[-1]


def test_builtin_metrics_equal_todays_columns_bit_for_bit(ref):
    """The default run (rel_l2, rel_l2_exact) is unchanged by adding MaxAbs; MaxAbs
    equals evaluate()'s max_abs at the end; a built-in against its own reference."""
    kw = dict(stages=None, steps=20, lr=1e-2, batch=32, progress=False, reference=ref, eval_every=10, log_every=5)
    plain = train(Poisson2D(), _net(), **kw)
    net = _net()
    extra = train(Poisson2D(), net, **kw, metrics=[MaxAbs(), RelL2(ref, name="rel_l2_own")])
    for a, b in zip(plain.history, extra.history):
        for k in ("rel_l2", "rel_l2_exact", "loss"):
            assert (k in a) == (k in b) and a.get(k) == b.get(k)
    end = evaluate(net, ref, exact=Poisson2D().exact_solution)
    assert extra.history[-1]["max_abs"] == end["max_abs"] == extra.final["max_abs"]
    assert extra.history[-1]["max_abs_exact"] == end["max_abs_exact"]
    assert extra.history[-1]["rel_l2_own"] == end["rel_l2"]
    assert set(plain.history[-1]) >= {"rel_l2", "rel_l2_exact"} and "max_abs" not in plain.history[-1]


def test_metric_names_collide_with_a_clear_error(ref):
    kw = dict(stages=[Adam(2)], batch=16, progress=False)
    with pytest.raises(ValueError, match=r"metric name 'rel_l2' is used twice"):
        train(Poisson2D(), _net(), reference=ref, metrics=[RelL2()], **kw)
    with pytest.raises(ValueError, match=r"metric name 'loss' .* collides with the history column 'loss'"):
        train(Poisson2D(), _net(), metrics=[Callable("loss", lambda net: 0.0)], **kw)
    with pytest.raises(ValueError, match=r"metric name 'pde' .* collides"):
        train(Poisson2D(), _net(), metrics=[Callable("pde", lambda net: 0.0)], **kw)
    with pytest.raises(ValueError, match=r"metric name 'lr' .* collides"):
        train(Poisson2D(), _net(), metrics=[Callable("lr", lambda net: 0.0)], **kw)

    def err(net):
        return 0.0
    with pytest.raises(ValueError, match=r"metric name 'err' is used twice"):
        train(Poisson2D(), _net(), metrics=[err, Callable("err", err)], **kw)
    with pytest.raises(ValueError, match=r"no usable name .*Callable\('my_error', fn\)"):
        train(Poisson2D(), _net(), metrics=[lambda net: 0.0], **kw)
    with pytest.raises(ValueError, match=r"measures against the run's reference, but train\(\) got none"):
        train(Poisson2D(), _net(), metrics=[MaxAbs()], **kw)
    with pytest.raises(TypeError, match=r"returned 'x' at step 2; a metric returns a real number"):
        train(Poisson2D(), _net(), metrics=[Callable("bad", lambda net: "x")], **kw)


# ----- stall stops -----------------------------------------------------------------------

STALL = Stall(window=20, rtol=1e-2)


def _stall_stages():
    return [LBFGS(300, chunk=5), Adam(20, lr=1e-4)]


def _stall_kw():
    return dict(batch=32, seed=0, progress=False, log_every=5, stall=STALL)


def test_stall_rule():
    with pytest.raises(ValueError, match=r"window must be a fraction"):
        Stall(window=1.5)
    with pytest.raises(ValueError, match=r"rtol must be in \[0, 1\)"):
        Stall(rtol=1.0)
    assert Stall().steps(200) == 50 and Stall().steps(5000) == 500 and Stall(window=7).steps(5000) == 7
    with pytest.raises(TypeError, match=r"stall must be a pinn_sine.Stall"):
        train(Poisson2D(), _net(), stages=[Adam(2)], batch=16, progress=False, stall=0.1)


def test_lbfgs_stalls_early_says_so_and_the_next_stage_runs():
    r = train(Poisson2D(), _net(), stages=_stall_stages(), **_stall_kw())
    assert len(r.stalls) == 1
    s = r.stalls[0]
    assert (s["index"], s["stage"], s["steps"]) == (0, "lbfgs", 300) and 20 < s["stage_step"] < 300
    assert "not below (1 - 0.01) x" in s["message"]
    stalled = [row for row in r.history if row.get("stalled")]
    assert len(stalled) == 1 and stalled[0]["step"] == s["step"] and stalled[0]["phase"] == "lbfgs"
    # the stall test itself, on the logged losses (every chunk is logged here)
    losses = {row["step"]: row["loss"] for row in r.history if row["phase"] == "lbfgs"}
    n = s["stage_step"]
    assert min(v for k, v in losses.items() if k > n - 20) >= 0.99 * min(v for k, v in losses.items() if k <= n - 20)
    assert [row["step"] for row in r.history if row["phase"] == "adam"][-1] == 320   # the next stage ran
    assert r.steps_done == n + 20 and r.steps_planned == 320 and r.stop_reason == "completed"
    assert "stalled: lbfgs at step" in r.stop_message
    # the last stage stalling: the steps it ran, never fewer than zero (it counted its unplanned
    # remainder as skipped once: -6127 steps done in a 10207-step inpainting run)
    last = train(Poisson2D(), _net(), stages=[LBFGS(300, chunk=5)], **_stall_kw())
    assert len(last.stalls) == 1 and last.steps_done == last.stalls[0]["stage_step"] > 0
    # without the stall rule the stage runs its steps
    full = train(Poisson2D(), _net(), stages=_stall_stages(), **{**_stall_kw(), "stall": None})
    assert not full.stalls and full.steps_done == 320


@pytest.mark.parametrize("stop_after, phase", [(300, "lbfgs"), (380, "adam")])
def test_resume_with_a_stall_detector_is_bit_identical(tmp_path, stop_after, phase):
    """Killed inside L-BFGS with the detector holding a window (its state resumes), and
    killed in the stage after the stall (the stalled stage is not run again)."""
    kw = {**_stall_kw(), "checkpoint_every": 5}
    full = _net()
    r_full = train(Poisson2D(), full, stages=_stall_stages(), **kw)
    assert r_full.stalls

    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_KilledPoisson(stop_after), _net(), stages=_stall_stages(), checkpoint=ck, **kw)
    saved = load_checkpoint(ck)
    assert saved["meta"]["phase"] == phase, saved["meta"]["phase"]
    if phase == "lbfgs":
        assert saved["meta"]["stall"]["detector"]["recent"] and not saved["meta"]["stall"]["stalls"]
    else:
        assert saved["meta"]["stall"]["stalls"] == r_full.stalls

    resumed = _net(seed=7)
    r_res = train(Poisson2D(), resumed, stages=_stall_stages(), resume=ck, checkpoint=ck, **kw)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(r_res.history) == _rows(r_full.history)
    assert r_res.stalls == r_full.stalls and r_res.steps_done == r_full.steps_done
    # a finished run resumed again: the stalled stage stays finished
    again = train(Poisson2D(), resumed, stages=_stall_stages(), resume=ck, **kw)
    assert again.steps_done == r_full.steps_done and len(again.history) == len(r_full.history)


def test_resume_refuses_another_stall_rule(tmp_path):
    ck = tmp_path / "ck.pt"
    train(Poisson2D(), _net(), stages=[Adam(2)], batch=16, progress=False, checkpoint=ck)
    with pytest.raises(Exception, match=r"stall: checkpoint .* this run None"):
        train(Poisson2D(), _net(), stages=[Adam(4)], batch=16, progress=False, resume=ck, stall=None)


# ----- L-BFGS with fresh batches ---------------------------------------------------------

def test_lbfgs_resample_every_draws_new_batches():
    kw = dict(batch=32, seed=0, progress=False, log_every=5, stall=None)
    fixed = train(Poisson2D(), _net(), stages=[LBFGS(30, chunk=5)], **kw)
    fresh = train(Poisson2D(), _net(), stages=[LBFGS(30, chunk=4, resample_every=10)], **kw)
    assert LBFGS(3, resample_every=10).describe()["resample_every"] == 10
    assert "resample_every" not in LBFGS(3).describe()   # runs made before it describe alike
    assert fresh.history[-1]["step"] == 30
    first = train(Poisson2D(), _net(), stages=[LBFGS(10, chunk=10)], **kw)
    first_fresh = train(Poisson2D(), _net(), stages=[LBFGS(10, chunk=10, resample_every=10)], **kw)
    assert first.history[-1]["loss"] == first_fresh.history[-1]["loss"]
    # the same first batch as without resampling; then new ones
    assert fresh.history[-1]["loss"] != fixed.history[-1]["loss"]
    with pytest.raises(ValueError, match=r"LBFGS: resample_every must be an integer >= 1"):
        LBFGS(3, resample_every=0)


@pytest.mark.parametrize("stop_after", [20, 45])
def test_lbfgs_resample_every_resumes_bit_identically(tmp_path, stop_after):
    stages = lambda: [LBFGS(40, chunk=5, resample_every=10)]  # noqa: E731
    kw = dict(batch=32, seed=0, progress=False, log_every=5, checkpoint_every=5)
    full = _net()
    r_full = train(Poisson2D(), full, stages=stages(), **kw)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_KilledPoisson(stop_after), _net(), stages=stages(), checkpoint=ck, **kw)
    assert 0 < load_checkpoint(ck)["stage_step"] < 40
    resumed = _net(seed=7)
    r_res = train(Poisson2D(), resumed, stages=stages(), resume=ck, checkpoint=ck, **kw)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(r_res.history) == _rows(r_full.history)
