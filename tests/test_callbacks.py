"""The training loop of callbacks (pinn_sine.loop.fit, pinn_sine.callbacks): it reproduces
the histories of the monolithic train() it replaced bit for bit, every callback's state
round-trips through state_dict/load_state_dict (and through a checkpoint), the divergence
guard's window survives a resume, and a user's callback sees the hooks in the documented
order and adds history columns."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _callback_scenarios as scenarios  # noqa: E402

from pinn_sine import Stall, train  # noqa: E402
from pinn_sine.callbacks import (Callback, Checkpoint, DivergenceGuard, Evaluation, FiniteLossGuard,  # noqa: E402
                                 Progress, SigintStop, StallStop, Timer, restore)
from pinn_sine.checkpoint import load_checkpoint  # noqa: E402
from pinn_sine.loop import Loop, TrainingDiverged, fit  # noqa: E402
from pinn_sine.optim import LBFGS, Adam  # noqa: E402
from pinn_sine.optim.conformance import interrupting  # noqa: E402
from pinn_sine.problems import Poisson2D  # noqa: E402
from pinn_sine.stall import StallDetector  # noqa: E402
from pinn_sine.weighting import FixedWeights  # noqa: E402

RECORDED = json.loads(scenarios.DATA.read_text())
#: the recorded values are bitwise facts of one torch build on one CPU kind
recorded_here = pytest.mark.skipif(
    RECORDED.get("_machine") != scenarios.machine(),
    reason=f"histories recorded with {RECORDED.get('_machine')}, this machine is {scenarios.machine()}: "
           "re-record them here (python tests/_callback_scenarios.py --record from the commit the file names)")


@pytest.fixture(autouse=True)
def one_thread():
    """The recorded histories were computed on one thread (reductions sum in its order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: the recorded values went through one BLAS build's kernels (the Gauss-Newton solve, the
#: error columns); with another's (another CPU model: OpenBLAS dispatches on it) they
#: agree to rounding, 1e-15 relative per operation and at most 3e-13 over the recorded
#: runs (measured on "openblas 0.3.31 Haswell" against the file's recording)
SAME_BLAS = RECORDED.get("_blas") == scenarios.blas()
BLAS_RTOL = 0.0 if SAME_BLAS else 1e-11


def _close(a, b) -> bool:
    if a == b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return (isinstance(a, float) and isinstance(b, float)
            and math.isclose(a, b, rel_tol=BLAS_RTOL, abs_tol=0.0))


def _same(got: dict, want: dict) -> None:
    """Bit for bit on the recording's BLAS kernels, else within BLAS_RTOL."""
    got = scenarios.canonical(got)
    for key in want:
        if key == "history":
            assert len(got[key]) == len(want[key])
            for i, (a, b) in enumerate(zip(got[key], want[key])):
                assert _close(a, b), f"history row {i}: {a} != {b}"
                assert list(a) == list(b), f"history row {i}: column order"  # the CSV's columns
        else:
            assert _close(got[key], want[key]), key


# ----- today's histories, bit for bit ------------------------------------------------------

@recorded_here
@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_loop_reproduces_the_recorded_histories(name):
    """Adam / L-BFGS / Gauss-Newton with a reference and a second metric, a time limit
    reached at the first step, a stall, GradNorm and causal weights, an unknown
    coefficient, a divergence: every history value, the stop reason and message, the
    final evaluation and metrics equal those of the monolithic train() (recorded in
    tests/data/callback_loop_histories.json)."""
    _same(scenarios.summary(scenarios.SCENARIOS[name]()), RECORDED[name])


@recorded_here
def test_a_resumed_run_reproduces_the_uninterrupted_history(tmp_path):
    """Killed inside L-BFGS and resumed: the recorded history of the uninterrupted run."""
    summary = scenarios.summary(scenarios.resumed(tmp_path))
    _same(summary, {k: v for k, v in RECORDED["stages_with_reference"].items() if k != "timing_keys"})
    _same(summary, RECORDED["resumed"])


@recorded_here
def test_a_checkpoint_of_the_monolithic_loop_resumes_to_the_same_history(tmp_path):
    """tests/data/pre_callbacks_checkpoint.pt was written by the train() of commit a3a7359
    (the same run as scenarios.resumed, killed inside L-BFGS at step 35; it has no
    callback states): it loads, and resuming from it ends on the recorded history."""
    ck = tmp_path / "old.pt"
    ck.write_bytes((scenarios.DATA.parent / "pre_callbacks_checkpoint.pt").read_bytes())
    stored = load_checkpoint(ck)
    assert (stored["step"], stored["meta"]["phase"]) == (35, "lbfgs") and "callbacks" not in stored["meta"]
    r = train(Poisson2D(), scenarios._net(seed=5), stages=scenarios._stages(), batch=32, seed=0, progress=False,
              log_every=5, eval_every=10, reference=scenarios._reference(), metrics=[scenarios.MaxAbs()], stall=None,
              resume=ck)
    _same(scenarios.summary(r), RECORDED["resumed"])


# ----- the divergence guard's window is checkpointed ----------------------------------------

@recorded_here
def test_divergence_window_survives_a_resume(tmp_path):
    """The diverging run (above 1.5 x its best since step 2, stopped at step 22) killed
    at step 12 with a checkpoint at step 10, inside the window: the checkpoint holds the
    window, and the resumed run stops at step 22 with the same message and history.
    (The monolithic train() reset the window on resume: that run went on to step 54.)"""
    ck = tmp_path / "ck.pt"
    kw = dict(stages=[Adam(200, lr=0.5, schedule="constant")], batch=32, seed=0, progress=False, log_every=1,
              divergence=1.5, stall=None, checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        train(interrupting(Poisson2D)(13), scenarios._net(), checkpoint=ck, **kw)
    stored = load_checkpoint(ck)
    window = stored["meta"]["callbacks"]["divergence"]
    assert stored["step"] == 10 and window["above_since"] == 2 and window["best"] == pytest.approx(1.0856, rel=1e-4)
    with pytest.raises(TrainingDiverged) as err:
        train(Poisson2D(), scenarios._net(seed=3), resume=ck, **kw)
    want = RECORDED["diverged"]
    assert err.value.step == 22 and err.value.result.stop_message == want["stop_message"]
    _same(scenarios.summary(err.value.result), {k: v for k, v in want.items() if k != "timing_keys"})


def test_the_window_is_forgotten_at_a_new_stage_and_a_new_batch():
    guard = DivergenceGuard(10.0)
    guard.check(3, "adam", 1.0)
    guard.check(4, "adam", 50.0)
    assert (guard.best, guard.above_since) == (1.0, 4)
    guard.on_batch_change(None, None)
    assert (guard.best, guard.above_since) == (math.inf, None)
    guard.check(5, "adam", 2.0)
    guard.load_state_dict(guard.state_dict())
    guard.on_stage_start(SimpleNamespace(resumed=False), None)  # a stage started afresh: no window
    assert (guard.best, guard.above_since) == (math.inf, None)


# ----- every callback's state round-trips -----------------------------------------------------

def _resumed_loop():
    return SimpleNamespace(resumed=True, done=40, context=SimpleNamespace(ctx=SimpleNamespace(active=False)))


def _round_trip(state: dict) -> dict:
    return json.loads(json.dumps(state))  # as a checkpoint's JSON meta holds it


def test_divergence_guard_state_round_trips():
    guard = DivergenceGuard(1e4)
    for step, loss in ((1, 2.0), (2, 0.5), (3, 1e5), (4, 2e5)):
        guard.check(step, "adam", loss)
    state = guard.state_dict()
    assert state == {"best": 0.5, "above_since": 3}
    other = DivergenceGuard(1e4)
    other.load_state_dict(_round_trip(state))
    other.on_stage_start(_resumed_loop(), None)
    assert other.state_dict() == state
    assert DivergenceGuard(2.0).state_dict() == {"best": None, "above_since": None}  # inf is not JSON


def test_stall_state_round_trips():
    rule = Stall(window=10, rtol=1e-3)
    stall = StallStop(rule)
    stall.detector = StallDetector(rule, 100)
    for d in range(1, 31):
        stall.detector.add(d, torch.tensor(1.0 / d, dtype=torch.float64))
    assert not stall.detector.check(30, lambda t: t)
    stall.detector.add(31, torch.tensor(0.01, dtype=torch.float64))  # pending until the state is read
    state = stall.state_dict()
    assert state["detector"]["best_before"] == 1 / 20 and [d for d, _ in state["detector"]["recent"]] == \
        list(range(21, 32))
    other = StallStop(rule)
    other.load_state_dict(_round_trip(state))
    other.on_stage_start(_resumed_loop(), SimpleNamespace(steps=100))
    assert other.state_dict() == state
    fresh = StallStop(rule)
    fresh.load_state_dict(_round_trip(state))
    fresh.on_stage_start(SimpleNamespace(resumed=False), SimpleNamespace(steps=100))  # another stage: a new window
    assert fresh.state_dict()["detector"] == {"window": 10, "best_before": None, "recent": []}


@pytest.mark.parametrize("make", [lambda: Timer(5.0), lambda: FiniteLossGuard(), lambda: Progress(False),
                                  lambda: Checkpoint(None, 10, {"batch": 4}), lambda: SigintStop(),
                                  lambda: Evaluation(Poisson2D(), None, [])],
                         ids=["Timer", "FiniteLossGuard", "Progress", "Checkpoint", "SigintStop", "Evaluation"])
def test_stateless_callbacks_have_an_empty_state(make):
    """What these do is settings or this call's own (the time limit counts this call's
    seconds; the metrics are in the history, which the loop's state holds)."""
    cb = make()
    assert cb.state_dict() == {}
    cb.load_state_dict({})
    assert cb.state_dict() == {}


def test_loop_and_context_states_round_trip(tmp_path):
    """The loop's state (position, stage states, history, stalls, elapsed) and the
    context's (generator, points) as a checkpoint stores them, back into a new loop."""
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(interrupting(Poisson2D)(16), scenarios._net(), stages=[Adam(10, lr=1e-2), LBFGS(10, chunk=2)],
              batch=16, progress=False, log_every=2, checkpoint=ck, checkpoint_every=3, stall=None)
    stored = load_checkpoint(ck)
    run = sys.modules["pinn_sine.train"].Run(
        Poisson2D(), scenarios._net(), batch=16, seed=0, engine="jet", weighting=FixedWeights({}), causal=None,
        adaptive=None, compile=False)
    run.load_state_dict(stored["ranks"][0])
    mine = run.state_dict()
    assert torch.equal(mine["generator"], stored["ranks"][0]["generator"])
    assert all(torch.equal(mine["points"][k], v) for k, v in stored["ranks"][0]["points"].items())
    state = {"stage": stored["stage"], "stage_step": stored["stage_step"], "stages": stored["stages"],
             "described": stored["meta"]["stages"], "history": stored["meta"]["history"],
             "final_losses": stored["meta"]["final_losses"], "stalls": [], "elapsed": stored["meta"]["elapsed"]}
    loop = Loop(run, [Adam(10, lr=1e-2), LBFGS(10, chunk=2)], [])
    loop.load_state_dict(state)
    loop.index, loop.done = loop.start
    again = loop.state_dict()
    assert again["elapsed"] >= state["elapsed"]
    assert {k: v for k, v in again.items() if k != "elapsed"} == {k: v for k, v in state.items() if k != "elapsed"}


# ----- a user's callback ---------------------------------------------------------------------

class Recorder(Callback):
    """Records every hook it sees, adds a column, and counts its rows (its state)."""

    def __init__(self):
        self.calls: list[str] = []
        self.rows = 0

    def __getattribute__(self, name):
        if name.startswith("on_") or name == "teardown":
            object.__getattribute__(self, "calls").append(name)
        return object.__getattribute__(self, name)

    def on_log(self, loop, stage, row):
        self.rows += 1
        row["rows_seen"] = self.rows
        row["log10_lr"] = math.log10(row["lr"]) if "lr" in row else None

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = state["rows"]


def test_user_callback_sees_the_hooks_in_order_and_adds_columns():
    rec = Recorder()
    r = train(Poisson2D(), scenarios._net(), stages=[Adam(3, lr=1e-2), LBFGS(2, chunk=2)], batch=16, progress=False,
              log_every=2, stall=None, callbacks=[rec])
    step = ["on_step_start", "on_loss", "on_after_step"]
    adam = ["on_stage_start", *step, "on_step_end", *step, "on_log", "on_step_end", *step, "on_log", "on_step_end",
            "on_stage_end"]
    # L-BFGS: one chunk of 2 iterations is one step of the loop (its line search computes more losses)
    lbfgs_calls = rec.calls[len(["on_fit_start"]) + len(adam):]
    assert rec.calls[:1 + len(adam)] == ["on_fit_start", *adam]
    assert [c for c in lbfgs_calls if c != "on_loss"] == ["on_stage_start", "on_step_start", "on_after_step",
                                                          "on_log", "on_step_end", "on_stage_end", "on_fit_end",
                                                          "teardown"]
    # the columns are the row's last, after the built-ins ("time" included), on every row
    assert [row["step"] for row in r.history] == [2, 3, 5]
    assert all(list(row)[-2:] == ["rows_seen", "log10_lr"] for row in r.history)
    assert [row["rows_seen"] for row in r.history] == [1, 2, 3]
    assert all(row["log10_lr"] == math.log10(row["lr"]) for row in r.history)
    assert "rows_seen" in r.history_table()[0]


def test_user_callback_state_is_checkpointed_and_restored(tmp_path):
    ck = tmp_path / "ck.pt"
    kw = dict(stages=[Adam(12, lr=1e-2)], batch=16, progress=False, log_every=2, stall=None, checkpoint_every=4)
    full = Recorder()
    r_full = train(Poisson2D(), scenarios._net(), callbacks=[full], **kw)
    with pytest.raises(KeyboardInterrupt):
        train(interrupting(Poisson2D)(10), scenarios._net(), checkpoint=ck, callbacks=[Recorder()], **kw)
    assert load_checkpoint(ck)["meta"]["callbacks"]["Recorder"] == {"rows": 4}  # rows at steps 2, 4, 6, 8
    resumed = Recorder()
    r = train(Poisson2D(), scenarios._net(seed=4), resume=ck, callbacks=[resumed], **kw)
    assert resumed.rows == full.rows == 6 and resumed.calls[0] == "on_fit_start"
    assert scenarios.rows(r.history) == scenarios.rows(r_full.history)


def test_a_callback_can_stop_the_run_and_end_a_stage():
    class StopAt(Callback):
        def on_after_step(self, loop, stage, result):
            if loop.global_step == 3 and loop.log_due:
                loop.stop_stage("enough of Adam")
            if loop.global_step == 7:
                loop.stop("time_limit", "a user's budget")

    r = train(Poisson2D(), scenarios._net(), stages=[Adam(4, lr=1e-2), Adam(10, lr=1e-3)], batch=16,
              progress=False, log_every=1, stall=None, callbacks=[StopAt()])
    assert r.stalls[0]["stage"] == "adam" and r.stalls[0]["stage_step"] == 3 and r.history[2]["stalled"] is True
    assert [row["step"] for row in r.history] == [1, 2, 3, 5, 6, 7]  # the second stage counts from its step 4
    assert r.stop_reason == "time_limit" and r.stop_message.startswith("a user's budget")
    assert r.steps_done == 6


def test_callbacks_are_checked():
    with pytest.raises(TypeError, match="callbacks must hold pinn_sine.callbacks.Callback instances"):
        train(Poisson2D(), scenarios._net(), stages=[Adam(1)], batch=16, progress=False, callbacks=[object()])
    with pytest.raises(TypeError, match=r"callbacks must be a list of callbacks, e.g. callbacks=\["):
        train(Poisson2D(), scenarios._net(), stages=[Adam(1)], batch=16, progress=False, callbacks=Recorder())
    rec = Recorder()
    with pytest.raises(ValueError, match="the same callback object appears twice"):
        train(Poisson2D(), scenarios._net(), stages=[Adam(1)], batch=16, progress=False, callbacks=[rec, rec])
    with pytest.raises(ValueError, match=r"callbacks share the state_key \['Recorder'\]"):
        train(Poisson2D(), scenarios._net(), stages=[Adam(1)], batch=16, progress=False,
              callbacks=[Recorder(), Recorder()])
    with pytest.raises(TypeError, match="callbacks must be pinn_sine.callbacks.Callback instances"):
        fit(None, [], [object()])


def test_restore_reads_the_stall_detector_and_the_others():
    guard, stall, rec = DivergenceGuard(2.0), StallStop(Stall()), Recorder()
    restore([guard, stall, rec], {"stall": {"stalls": [], "detector": {"window": 5, "best_before": 1.0,
                                                                         "recent": [[3, 2.0]]}},
                                  "callbacks": {"divergence": {"best": 0.25, "above_since": None}}})
    assert stall._resumed["window"] == 5 and guard._resumed == {"best": 0.25, "above_since": None}
    assert rec.rows == 0  # no state stored for it: it keeps its fresh one


def test_the_reference_limit_warning_points_at_the_callers_line():
    """Raised inside the Evaluation callback, it names the line that called train()."""
    net = scenarios._net()
    with pytest.warns(RuntimeWarning, match="it measures the reference, not the network") as record:
        train(Poisson2D(), net, stages=[Adam(2, lr=1e-2)], batch=16, progress=False, stall=None,
              reference=_limited_reference())
    assert record[0].filename == __file__


def _limited_reference():
    """A reference whose own error estimate is far above any error a network can show."""
    import dataclasses

    ref = scenarios._reference()
    return dataclasses.replace(ref, attrs={**ref.attrs, "error_estimate": 10.0})


def test_fit_runs_stages_without_train():
    """The loop on its own: a context, the stages, only the callbacks asked for (here
    the finite-loss guard and a user's); the losses equal train()'s without callbacks."""
    Run = sys.modules["pinn_sine.train"].Run
    net = scenarios._net()
    run = Run(Poisson2D(), net, batch=16, seed=0, engine="jet", weighting=FixedWeights({}), causal=None,
              adaptive=None, compile=False)
    rec = Recorder()
    r = fit(run, [Adam(4, lr=1e-2)], [FiniteLossGuard(), rec], log_every=2)
    assert r.net is net and r.stop_reason == "completed" and r.steps_done == 4 and rec.rows == 2
    assert rec.calls[0] == "on_fit_start" and rec.calls[-2:] == ["on_fit_end", "teardown"]
    same = train(Poisson2D(), scenarios._net(), stages=[Adam(4, lr=1e-2)], batch=16, seed=0, progress=False,
                 log_every=2, stall=None)
    assert [row["loss"] for row in r.history] == [row["loss"] for row in same.history]
