"""Training checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint (format 2) holds the network's state dict, the index of the stage to
continue and the steps it had done, every started stage's own state
(:meth:`~pinn_sine.optim.Stage.state_dict`), the sampling state of each process
(generator, current points, RAD pool) and a JSON text of the rest (history, elapsed
time, weighting state, the run's description).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ._io import atomic_write

CHECKPOINT_FORMAT = 2


def save_checkpoint(path, *, step: int, net: nn.Module, stage: int, stage_step: int, stages: list[dict],
                    generator: torch.Generator, meta: dict, ranks: list[dict] | None = None) -> Path:
    """Atomically write a checkpoint (:func:`pinn_sine._io.atomic_write`).

    ``stage``/``stage_step``: the stage in progress and its completed steps; ``stages``:
    the state dicts of the stages started so far; ``ranks``: each process's own state in
    rank order (``generator`` is rank 0's)."""
    payload = {"format": CHECKPOINT_FORMAT, "step": step, "net": net.state_dict(), "stage": stage,
               "stage_step": stage_step, "stages": stages, "generator": generator.get_state(),
               "meta_json": json.dumps(meta, default=str)}
    if ranks is not None:
        payload["ranks"] = ranks
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check its format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pinn_sine checkpoint of format {CHECKPOINT_FORMAT}.")
    ck["meta"] = json.loads(ck.pop("meta_json"))
    return ck
