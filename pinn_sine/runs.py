"""Run folders: what ``pinn-sine solve`` writes and how to read a run back.

A run folder holds ``config.json`` (everything needed to rerun it, :func:`run_config`),
``checkpoint.pt``, and once finished ``metrics.json``, ``history.csv``,
``prediction.h5`` and figures. :func:`load_run` returns its problem and trained
network; :func:`load_net` the network of one checkpoint file.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, check_compatible, load_checkpoint
from .train import _load_coefficients, mark_trained_for

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
#: files whose presence marks a folder as holding a run
RUN_FILES = (CONFIG_NAME, CHECKPOINT_NAME, METRICS_NAME, "history.csv", "prediction.h5")
CONFIG_VERSION = 1


def versions() -> dict:
    """The versions of the package, torch, numpy, scipy and Python."""
    import numpy
    import scipy

    from . import __version__
    return {"pinn_sine": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "python": platform.python_version()}


def holds_run(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds any of a run's files."""
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).exists() for name in RUN_FILES)


LOCK_NAME = ".lock"


class FolderInUse(RuntimeError):
    """The run folder is claimed by another live process (its lock file names it)."""


class RunLock:
    """The claim of one process on a run folder: the file ``.lock`` created with
    ``O_CREAT | O_EXCL`` (so of two processes only one can create it, however they are
    timed), holding ``pid host time``. A lock whose process no longer runs on this host
    is stale and is taken over: it is first renamed away (only one process can), then
    claimed as above. :meth:`release` (or leaving the ``with`` block) removes it.

    Raises:
        FolderInUse: another live process holds the folder.
    """

    def __init__(self, folder: str | os.PathLike):
        import socket
        import time

        self.path = Path(folder) / LOCK_NAME
        self.text = f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_stale()
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(self.text)
            return
        raise FolderInUse(f"{self.path.parent}: could not claim {self.path} (contended); try again.")

    def _take_over_stale(self) -> None:
        import socket

        from ._io import _alive

        try:
            held = self.path.read_text()
        except FileNotFoundError:
            return
        parts = held.split()
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        host = parts[1] if len(parts) > 1 else None
        if pid is not None and host == socket.gethostname() and not _alive(pid):
            aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
            try:
                os.rename(self.path, aside)  # atomic: of several takers only one gets it
            except FileNotFoundError:
                return
            if aside.read_text() != held:  # renamed a fresh claim by mistake: put it back
                os.rename(aside, self.path)
                return
            aside.unlink()
            return
        who = f"process {pid} on {host}" if pid is not None else f"an unreadable lock ({held[:40]!r})"
        raise FolderInUse(f"{self.path.parent} is in use by {who} (lock file {self.path}); wait for that run to "
                          f"end or choose another --out. If no such run exists, remove {self.path}.")

    def release(self) -> None:
        try:
            if self.path.read_text() == self.text:
                self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def run_config(*, problem, problem_options: dict, net: nn.Module, stages, options: dict, reference,
               argv: list[str] | None) -> dict:
    """The ``config.json`` of a run: the problem (registry name, the constructor options
    it was built from, its parameters), the network's config, every stage's settings,
    the solve options (``options``, the command line's values by option name, from which
    ``pinn-sine solve --config`` rebuilds the run), the reference (resolution, grid,
    hash, solver), the versions, the command line and a UTC timestamp."""
    return {
        "config_version": CONFIG_VERSION,
        "run_id": uuid.uuid4().hex,
        "problem": {"name": problem.name, "options": problem_options, "constraint": problem.constraint,
                    "params": problem.params(),
                    # an inverse problem's unknowns and observations (absent for a forward one)
                    **({"inverse": problem.inverse_record()} if problem.inverse_record() is not None else {})},
        "net": getattr(net, "config", {}),
        "stages": [s.describe() for s in stages],
        "options": options,
        "reference": None if reference is None else {
            "resolution": options.get("resolution"),
            "grid": ({"points": int(reference.grid_shape[0])} if getattr(reference, "scattered", False)
                     else dict(zip(reference.coords, reference.grid_shape))),
            "hash": reference.hash, "solver": reference.solver},
        "versions": versions(),
        "command": [Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None else list(argv)),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def json_text(obj: dict) -> str:
    """``obj`` as indented JSON with a ``digest`` key: the SHA-256 of its canonical JSON
    (sorted keys, no spaces) without that key. config.json and metrics.json are written
    this way; :func:`check_digest` verifies them."""
    body = {k: v for k, v in obj.items() if k != "digest"}
    body = json.loads(json.dumps(body, default=str))
    return json.dumps({**body, "digest": _digest(body)}, indent=2)


def _digest(body: dict) -> str:
    import hashlib

    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def check_digest(obj: dict, path, *, required: bool) -> None:
    """Raise ValueError when ``obj`` (read from ``path``) does not match its ``digest``, or
    has none and ``required``."""
    if "digest" not in obj:
        if required:
            raise ValueError(f"{path} has no digest: it was not written by pinn-sine solve (or an older version); "
                             "it cannot identify a run.")
        return
    if obj["digest"] != _digest({k: v for k, v in obj.items() if k != "digest"}):
        raise ValueError(f"{path} does not match its digest: it was changed after pinn-sine wrote it. Restore it, "
                         "or, to use an edited config as a new run's template with --config, delete its "
                         '"digest" line.')


def read_config(path: str | os.PathLike, *, require_digest: bool = False) -> dict:
    """A run's ``config.json`` (``path``: the file or its folder), checked for the keys
    a rerun needs and against its digest (:func:`json_text`): a file with a digest that
    does not match is refused; one without a digest only where ``require_digest`` is
    false (a config written by hand for ``solve --config``; ``--resume`` requires it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, not a run config of this package, or changed since written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"run config {path} does not exist.")
    config = _json_object(path, "run config ")
    missing = [k for k in ("config_version", "problem", "options", "net") if k not in config]
    if missing:
        raise ValueError(f"run config {path} lacks the keys {missing}; it is not a pinn-sine solve config.")
    check_digest(config, path, required=require_digest)
    if config["config_version"] != CONFIG_VERSION:
        raise ValueError(f"run config {path} has config_version {config['config_version']!r}; this package "
                         f"reads {CONFIG_VERSION}.")
    return config


def load_net(checkpoint: str | os.PathLike, problem=None) -> nn.Module:
    """The trained network of a checkpoint file: an MLP rebuilt from the config in its
    meta, in the stored dtype, with the stored weights.

    A hard-constrained run's checkpoint holds the inner network; pass its ``problem``
    (constraint="hard") to get the constrained network back (:func:`load_run` does).
    With ``problem`` given, the checkpoint must have been written for it (an inverse
    problem: the same unknowns and observations), and the problem's unknowns take the
    checkpoint's fitted values.

    Raises:
        CheckpointError: an unusable file (:func:`~pinn_sine.checkpoint.load_checkpoint`),
            a network config that cannot be rebuilt, another problem, or a
            constrained network without ``problem``.
    """
    return _net_of(checkpoint, load_checkpoint(checkpoint), problem)


def _net_of(checkpoint, ck: dict, problem) -> nn.Module:
    from .nets.build import net_from_config

    meta = ck["meta"]
    config = meta["net"]
    try:
        net = net_from_config(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(checkpoint, f"its network config cannot be rebuilt ({err}).") from None
    floats = [v for v in ck["net"].values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    if floats:
        net = net.to(floats[0].dtype)
    constrained = "constraint" in config
    pieces = (config.get("piecewise") or {}).get("nets") if isinstance(config, dict) else None
    march = bool(pieces) and any("constraint" in c for c in pieces)  # a hard march: constrained window by window
    state = ck["net"]
    if problem is not None:
        check_compatible(checkpoint, meta, problem=problem.name, problem_params=problem.params(),
                         net_config=config, inverse=problem.inverse_record())
        if march:  # the pieces' inner weights first; their transforms are built from them after loading
            from .marching import constrained_pieces, strip_inner

            state = strip_inner(state)
        else:
            net = problem.constrain(net)
    elif constrained or march:
        raise CheckpointError(checkpoint, f"holds a hard-constrained {'march' if march else 'network'} of "
                                          f"{meta['problem']}; pass problem= (the same problem, constraint='hard') "
                                          "or use load_run(folder).")
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(checkpoint, f"its weights do not fit the network its config describes "
                                          f"({str(err).splitlines()[0]}).") from None
    if problem is not None and (problem.coefficients() or ck.get("coefficients")):
        _load_coefficients(checkpoint, problem, ck.get("coefficients", {}))  # the fitted unknowns, in place
    if march:
        net = constrained_pieces(problem, net)
    mark_trained_for(net, meta["problem"])
    return net


def read_metrics(path: str | os.PathLike) -> dict:
    """A run's ``metrics.json``, checked against its digest (a file of an older version,
    written without one, is read unchecked).

    Raises:
        ValueError: not JSON, or changed since it was written."""
    path = Path(path)
    metrics = _json_object(path, "")
    check_digest(metrics, path, required=False)
    return metrics


def _json_object(path: Path, label: str) -> dict:
    """The JSON object in ``path``; a ValueError "<label><path> is not ..." otherwise."""
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{label}{path} is not valid JSON ({err}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"{label}{path} is not a JSON object.")
    return value


@dataclass
class LoadedRun:
    """What :func:`load_run` returns: ``problem`` (rebuilt from the config), ``net`` (the
    trained network, constrained where the run was), ``config`` (config.json),
    ``metrics`` (metrics.json, None for an unfinished run), ``step`` (the checkpoint's
    global step) and the ``checkpoint`` path; :meth:`stages` rebuilds its stages.
    ``ensemble``: a run with ``--ensemble K``, the :class:`~pinn_sine.nets.ensemble.Ensemble`
    of its kept networks (the batch fits, or with ``--ensemble-every`` the last stage's
    iterates; its answer, ``net`` is then the last iterate), else None."""

    problem: object
    net: nn.Module
    config: dict
    metrics: dict | None
    step: int
    checkpoint: Path
    ensemble: nn.Module | None = None

    def stages(self) -> list:
        """The run's optimizer stages, new objects rebuilt from config.json's
        ``"stages"`` (:func:`pinn_sine.optim.stage_from_description`).

        Raises:
            ValueError: the config has no stages, or one cannot be rebuilt."""
        from .optim import stage_from_description

        described = self.config.get("stages")
        if not isinstance(described, list) or not described:
            raise ValueError("the run's config.json lists no stages.")
        return [stage_from_description(desc) for desc in described]


def build_problem(config: dict):
    """The problem a run config describes (registry name and constructor options; an
    inverse problem's unknowns, at their guesses, and its observations, read again from
    the file the run read them from and checked against the digest it recorded)."""
    from .problems import PROBLEMS

    spec = config["problem"]
    if spec["name"] not in PROBLEMS:
        raise ValueError(f'run config names the problem "{spec["name"]}"; registered problems: {sorted(PROBLEMS)}.')
    cls = PROBLEMS[spec["name"]]
    kwargs = dict(spec.get("options") or {})
    if spec.get("constraint", "soft") != "soft":
        kwargs["constraint"] = spec["constraint"]
    problem = cls(**kwargs)
    if spec.get("inverse"):
        _rebuild_inverse(problem, spec["inverse"])
    return problem


def _rebuild_inverse(problem, record: dict) -> None:
    """Declare the unknowns of ``record`` (:meth:`Problem.inverse_record`) and attach its
    observations from their file."""
    for name, unknown in (record.get("unknowns") or {}).items():
        problem.declare_unknown(name, unknown["guess"], lower=unknown.get("lower"), upper=unknown.get("upper"))
    stored = record.get("observations")
    if not stored:
        return
    provenance = stored.get("provenance") or {}
    if provenance.get("kind") != "file":
        raise ValueError(f"the run's observations were given in Python ({provenance.get('kind')!r}), not read from "
                         "a file, so the run folder cannot rebuild them; rebuild the problem (declare_unknown, "
                         "observe) and pass it: load_net(folder / 'checkpoint.pt', problem).")
    from .observations import Observations

    path = Path(provenance["path"])
    if not path.is_file():
        raise FileNotFoundError(f"the run's observations file {path} is missing; load_run reads it again to rebuild "
                                "the inverse problem (put it back, or rebuild the problem and use load_net).")
    obs = Observations.from_file(path)
    if obs.digest() != stored.get("digest"):
        raise ValueError(f"the observations file {path} has changed since the run (digest {obs.digest()[:12]}..., "
                         f"the run recorded {str(stored.get('digest'))[:12]}...).")
    problem.observe(obs)


def load_run(folder: str | os.PathLike) -> LoadedRun:
    """A run folder of ``pinn-sine solve`` read back: the problem from ``config.json``,
    the trained network from ``checkpoint.pt`` (checked against that problem), the
    metrics where the run finished.

    Raises:
        FileNotFoundError: the folder, its config or its checkpoint is missing.
        ValueError: the config is unusable; CheckpointError (a ValueError) for the
            checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist.")
    config = read_config(folder / CONFIG_NAME)
    problem = build_problem(config)
    checkpoint = folder / CHECKPOINT_NAME
    ck = load_checkpoint(checkpoint)
    net = _net_of(checkpoint, ck, problem)
    metrics_path = folder / METRICS_NAME
    metrics = read_metrics(metrics_path) if metrics_path.exists() else None
    step = int(ck["step"])
    return LoadedRun(problem=problem, net=net, config=config, metrics=metrics, step=step, checkpoint=checkpoint,
                     ensemble=_ensemble_of(checkpoint, ck, config, net))


def _ensemble_of(checkpoint, ck: dict, config: dict, net: nn.Module):
    """The Ensemble of a ``--ensemble K`` run's kept networks (the SnapshotEnsemble state in
    the checkpoint's meta), or None for a run without it or before its first snapshot."""
    from .callbacks import SnapshotEnsemble

    keep = config["options"].get("ensemble")
    state = (ck["meta"].get("callbacks") or {}).get(SnapshotEnsemble.state_key)
    if not keep or not state or not state.get("snapshots"):
        return None
    snaps = SnapshotEnsemble(1, int(keep))
    snaps.load_state_dict(state)
    try:
        snaps.attach(net)
        return snaps.ensemble()
    except (RuntimeError, TypeError, ValueError) as err:
        raise CheckpointError(checkpoint, f"its snapshot ensemble does not fit its network "
                                          f"({str(err).splitlines()[0]}).") from None
