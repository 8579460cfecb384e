"""Training checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint (format 2) holds the network's state dict, the index of the stage to
continue and the steps it had done, every started stage's own state
(:meth:`~pinn_sine.optim.Stage.state_dict`), the sampling state of each process
(generator, current points, RAD pool) and a JSON text of the rest (history, elapsed
time, weighting state, the run's description: problem, its parameters, the network's
config, the stages; the stall detector under "stall" and, since the loop of callbacks,
every other callback's state under "callbacks": :mod:`pinn_sine.callbacks`).

A file that cannot be used (truncated, corrupted, another format, keys missing,
non-finite weights) raises :class:`CheckpointError` naming the file and the reason.
"""
from __future__ import annotations

import io
import hashlib
import json
import math
import pickle
from pathlib import Path

import torch
from torch import nn

from ._io import write_bytes

CHECKPOINT_FORMAT = 2
#: the file's outer format: the format-2 payload as bytes beside their SHA-256
FILE_FORMAT = 3
#: the keys every format-2 checkpoint holds, and those of its JSON meta that resuming reads
REQUIRED_KEYS = ("format", "step", "net", "stage", "stage_step", "stages", "generator", "meta_json")
REQUIRED_META = ("history", "elapsed", "stages", "problem", "problem_params", "net")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; ``path`` is the file, ``reason`` why."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {path}: {reason}")


def save_checkpoint(path, *, step: int, net: nn.Module, stage: int, stage_step: int, stages: list[dict],
                    generator: torch.Generator, meta: dict, ranks: list[dict] | None = None,
                    coefficients: dict[str, torch.Tensor] | None = None) -> Path:
    """Atomically write a checkpoint (:func:`pinn_sine._io.write_bytes`).

    ``stage``/``stage_step``: the stage in progress and its completed steps; ``stages``:
    the state dicts of the stages started so far; ``ranks``: each process's own state in
    rank order (``generator`` is rank 0's); ``coefficients``: the problem's trainable
    coefficients (:meth:`~pinn_sine.problems.Problem.coefficients`, raw values).

    The checkpoint is serialised in memory and written with plain file I/O: a full disk
    is an ``OSError`` (:class:`pinn_sine._io.WriteError` naming ``path``), never
    torch's "basic_ios::clear", and the previous checkpoint stays as it was."""
    payload = {"format": CHECKPOINT_FORMAT, "step": step, "net": net.state_dict(), "stage": stage,
               "stage_step": stage_step, "stages": stages, "generator": generator.get_state(),
               "meta_json": json.dumps(meta, default=str)}
    if ranks is not None:
        payload["ranks"] = ranks
    if coefficients:
        payload["coefficients"] = {k: v.detach().cpu().clone() for k, v in coefficients.items()}
    inner = io.BytesIO()
    torch.save(payload, inner)
    data = inner.getvalue()
    outer = io.BytesIO()
    torch.save({"format": FILE_FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, outer)
    with outer.getbuffer() as view:
        return write_bytes(path, view)


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check it: the SHA-256 of its
    contents (file format 3: a checkpoint changed in any bit after it was written is
    refused; a format-2 file of an older version, written without one, is read
    unchecked), its format, its keys, its JSON meta, the ranges of its counters (step,
    stage, stage step, elapsed time, the history's steps) and that every floating-point
    weight is finite.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, corrupted or changed, not a pinn_sine
            checkpoint of format 2, lacks keys, has counters out of range, or holds
            non-finite weights.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        raise CheckpointError(path, "is a folder; give the checkpoint file (e.g. checkpoint.pt in it).")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, UnicodeDecodeError, ValueError,
            AttributeError, IndexError, KeyError) as err:
        raise CheckpointError(path, f"cannot be read, the file is truncated or corrupted "
                                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
                                    "Resume from an intact checkpoint or start afresh.") from None
    if isinstance(ck, dict) and ck.get("format") == FILE_FORMAT:
        ck = _unwrap(path, ck)
    if not isinstance(ck, dict) or "format" not in ck:
        raise CheckpointError(path, f"is not a pinn_sine checkpoint of format {CHECKPOINT_FORMAT} "
                                    "(no 'format' key).")
    if ck["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"is not a pinn_sine checkpoint of format {CHECKPOINT_FORMAT} "
                                    f"(format {ck['format']!r}).")
    missing = [k for k in REQUIRED_KEYS if k not in ck]
    if missing:
        raise CheckpointError(path, f"lacks the keys {missing}; the file is damaged or was not written by "
                                    "pinn_sine.")
    try:
        meta = json.loads(ck.pop("meta_json"))
    except (TypeError, ValueError) as err:
        raise CheckpointError(path, f"its meta_json is not valid JSON ({err}).") from None
    if not isinstance(meta, dict):
        raise CheckpointError(path, f"its meta_json is a {type(meta).__name__}, not an object.")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(path, f"its meta lacks the keys {missing}.")
    _check_ranges(path, ck, meta)
    if not isinstance(ck["net"], dict):
        raise CheckpointError(path, f"its 'net' is a {type(ck['net']).__name__}, not a state dict.")
    bad = [k for k, v in ck["net"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(path, f"holds non-finite weights in {bad[:5]}{' ...' if len(bad) > 5 else ''}; "
                                    "the run diverged before it was written. Restart with a lower learning "
                                    "rate or first-layer omega.")
    coefficients = ck.get("coefficients", {})
    if not isinstance(coefficients, dict) or not all(
            isinstance(v, torch.Tensor) and v.is_floating_point() for v in coefficients.values()):
        raise CheckpointError(path, "its 'coefficients' are not a dict of floating-point tensors.")
    bad = [k for k, v in coefficients.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(path, f"holds non-finite problem coefficients {bad}; the run diverged before it "
                                    "was written.")
    ck["meta"] = meta
    return ck


def _unwrap(path, outer: dict) -> dict:
    """The format-2 payload of a format-3 file, after checking its SHA-256."""
    payload, digest = outer.get("payload"), outer.get("sha256")
    if not (isinstance(payload, torch.Tensor) and payload.dtype == torch.uint8 and payload.dim() == 1
            and isinstance(digest, str)):
        raise CheckpointError(path, "is damaged: its payload or digest is missing or malformed.")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(path, "does not match its SHA-256 digest: it was changed after it was written (a bit "
                                    "flip or an edit). Resume from an intact checkpoint or start afresh.")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError) as err:
        raise CheckpointError(path, f"its payload cannot be read ({type(err).__name__}).") from None


def _check_ranges(path, ck: dict, meta: dict) -> None:
    """The counters of a checkpoint within their ranges: what an edit could set so that a
    resume skips or repeats training silently."""
    def integer(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    problems = []
    if not integer(ck["step"]):
        problems.append(f"step {ck['step']!r} is not an integer >= 0")
    if not integer(ck["stage"]):
        problems.append(f"stage {ck['stage']!r} is not an integer >= 0")
    if not integer(ck["stage_step"]):
        problems.append(f"stage_step {ck['stage_step']!r} is not an integer >= 0")
    if not isinstance(ck["stages"], list) or (integer(ck["stage"]) and len(ck["stages"]) != ck["stage"] + 1):
        problems.append(f"it holds the states of {len(ck['stages']) if isinstance(ck['stages'], list) else '?'} "
                        f"stages for stage index {ck['stage']!r} (expected index + 1)")
    described = meta.get("stages")
    if not isinstance(described, list) or (integer(ck["stage"]) and len(described) != ck["stage"] + 1):
        problems.append("its stage descriptions do not match its stage index")
    elif integer(ck["stage"]) and integer(ck["stage_step"]):
        steps = (described[ck["stage"]] or {}).get("steps")
        if isinstance(steps, int) and ck["stage_step"] > steps:
            problems.append(f"stage_step {ck['stage_step']} exceeds the stage's {steps} steps")
    elapsed = meta.get("elapsed")
    if not (isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) and math.isfinite(elapsed)
            and elapsed >= 0):
        problems.append(f"elapsed {elapsed!r} is not a finite number of seconds >= 0")
    history = meta.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        problems.append("its history is not a list of rows")
    elif integer(ck["step"]) and any(not isinstance(r.get("step"), int) or r["step"] > ck["step"] for r in history):
        problems.append(f"its history has rows past its step {ck['step']}")
    if problems:
        raise CheckpointError(path, "holds counters out of range: " + "; ".join(problems) + ".")


def check_compatible(path, meta: dict, *, problem: str, problem_params: dict, net_config: dict,
                     inverse: dict | None = None) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's problem, its parameters, its
    unknowns and observations (``inverse``: :meth:`~pinn_sine.problems.Problem.inverse_record`)
    or the network's config (its init ``seed`` aside: resuming replaces the weights)
    differ from this run's, listing every difference."""
    diffs = []
    theirs_inverse = meta.get("inverse")
    if _canon(inverse) != _canon(theirs_inverse):
        for key in ("unknowns", "observations"):
            a, b = (theirs_inverse or {}).get(key), (inverse or {}).get(key)
            if _canon(a) != _canon(b):
                diffs.append(f"{key}: checkpoint {a!r}, this run {b!r}")
    if meta.get("problem") != problem:
        diffs.append(f"problem: checkpoint {meta.get('problem')!r}, this run {problem!r}")
    mine, theirs = _canon(problem_params), meta.get("problem_params") or {}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            diffs.append(f"problem parameter {key}: checkpoint {theirs.get(key)!r}, this run {mine.get(key)!r}")
    mine, theirs = _canon(net_config), meta.get("net") or {}
    for key in sorted((set(mine) & set(theirs)) - {"seed"}):  # keys both know
        if mine.get(key) != theirs.get(key):
            diffs.append(f"network {key}: checkpoint {theirs.get(key)!r}, this run {mine.get(key)!r}")
    if diffs:
        raise CheckpointError(path, "was written by another run: " + "; ".join(diffs)
                              + ". Resume with the same problem and network, or start afresh.")


def check_same_settings(path, ck: dict, *, net: nn.Module, stages, batch: int, seed: int, engine: str) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's run differs from this one in
    what a resume cannot change: the batch, seed, derivative engine, the network's dtype
    and every setting of the stages it started other than their step counts (more steps
    are how a run is continued), listing every difference."""
    meta, diffs = ck["meta"], []
    stored = meta.get("train") or {}
    for key, value in (("batch", batch), ("seed", seed), ("engine", engine)):
        if key in stored and stored[key] != value:
            diffs.append(f"{key}: checkpoint {stored[key]!r}, this run {value!r}")
    theirs = sorted({str(v.dtype) for v in ck["net"].values() if isinstance(v, torch.Tensor) and v.is_floating_point()})
    mine = sorted({str(p.dtype) for p in net.parameters()})
    if theirs and theirs != mine:
        diffs.append(f"dtype: checkpoint {theirs}, this run {mine}")
    for k, (described, stage) in enumerate(zip(meta["stages"], stages)):
        now = _canon(stage.describe())
        for key in sorted((set(described) | set(now)) - {"steps", "schedule_steps"}):
            if described.get(key) != now.get(key):
                diffs.append(f"stage {k} ({described.get('stage')}) {key}: checkpoint {described.get(key)!r}, "
                             f"this run {now.get(key)!r}")
    if diffs:
        raise CheckpointError(path, "was written by another run: " + "; ".join(diffs)
                              + ". Resume with the same settings (only step counts may grow), or start afresh.")


def _canon(value):
    """``value`` as JSON reads it back (tuples as lists, objects as their str)."""
    return json.loads(json.dumps(value, default=str))
