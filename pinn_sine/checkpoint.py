"""Training checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint (format 2) holds the network's state dict, the index of the stage to
continue and the steps it had done, every started stage's own state
(:meth:`~pinn_sine.optim.Stage.state_dict`), the sampling state of each process
(generator, current points, RAD pool) and a JSON text of the rest (history, elapsed
time, weighting state, the run's description: problem, its parameters, the network's
config, the stages).

A file that cannot be used (truncated, corrupted, another format, keys missing,
non-finite weights) raises :class:`CheckpointError` naming the file and the reason.
"""
from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import torch
from torch import nn

from ._io import write_bytes

CHECKPOINT_FORMAT = 2
#: the keys every format-2 checkpoint holds, and those of its JSON meta that resuming reads
REQUIRED_KEYS = ("format", "step", "net", "stage", "stage_step", "stages", "generator", "meta_json")
REQUIRED_META = ("history", "elapsed", "stages", "problem", "problem_params", "net")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; ``path`` is the file, ``reason`` why."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {path}: {reason}")


def save_checkpoint(path, *, step: int, net: nn.Module, stage: int, stage_step: int, stages: list[dict],
                    generator: torch.Generator, meta: dict, ranks: list[dict] | None = None) -> Path:
    """Atomically write a checkpoint (:func:`pinn_sine._io.write_bytes`).

    ``stage``/``stage_step``: the stage in progress and its completed steps; ``stages``:
    the state dicts of the stages started so far; ``ranks``: each process's own state in
    rank order (``generator`` is rank 0's).

    The checkpoint is serialised in memory and written with plain file I/O: a full disk
    is an ``OSError`` (:class:`pinn_sine._io.WriteError` naming ``path``), never
    torch's "basic_ios::clear", and the previous checkpoint stays as it was."""
    payload = {"format": CHECKPOINT_FORMAT, "step": step, "net": net.state_dict(), "stage": stage,
               "stage_step": stage_step, "stages": stages, "generator": generator.get_state(),
               "meta_json": json.dumps(meta, default=str)}
    if ranks is not None:
        payload["ranks"] = ranks
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with buffer.getbuffer() as data:
        return write_bytes(path, data)


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check it: its format, its keys,
    its JSON meta and that every floating-point weight is finite.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated or corrupted, not a pinn_sine checkpoint
            of format 2, lacks keys, or holds non-finite weights.
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
    if not isinstance(ck["net"], dict):
        raise CheckpointError(path, f"its 'net' is a {type(ck['net']).__name__}, not a state dict.")
    bad = [k for k, v in ck["net"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(path, f"holds non-finite weights in {bad[:5]}{' ...' if len(bad) > 5 else ''}; "
                                    "the run diverged before it was written. Restart with a lower learning "
                                    "rate or first-layer omega.")
    ck["meta"] = meta
    return ck


def check_compatible(path, meta: dict, *, problem: str, problem_params: dict, net_config: dict) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's problem, its parameters or the
    network's config (its init ``seed`` aside: resuming replaces the weights) differ from
    this run's, listing every difference."""
    def canon(value):
        return json.loads(json.dumps(value, default=str))

    diffs = []
    if meta.get("problem") != problem:
        diffs.append(f"problem: checkpoint {meta.get('problem')!r}, this run {problem!r}")
    mine, theirs = canon(problem_params), meta.get("problem_params") or {}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            diffs.append(f"problem parameter {key}: checkpoint {theirs.get(key)!r}, this run {mine.get(key)!r}")
    mine, theirs = canon(net_config), meta.get("net") or {}
    for key in sorted((set(mine) & set(theirs)) - {"seed"}):  # keys both know
        if mine.get(key) != theirs.get(key):
            diffs.append(f"network {key}: checkpoint {theirs.get(key)!r}, this run {mine.get(key)!r}")
    if diffs:
        raise CheckpointError(path, "was written by another run: " + "; ".join(diffs)
                              + ". Resume with the same problem and network, or start afresh.")
