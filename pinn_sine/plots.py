"""Matplotlib figures: fields side by side, loss and error curves.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no
backend switching), so they work headless and inside other programs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .validation.reference import ReferenceField


def field_comparison(pred: dict[str, np.ndarray], ref: ReferenceField, path: str | Path, *,
                     title: str = "", index: tuple = ()) -> Path:
    """Prediction, reference and |error| side by side for each field of a 2-D slice.

    Prediction and reference share one colour scale per field. For a field with more
    than two grid axes, ``index`` selects the leading axes (e.g. a time index).
    """
    names = list(ref.fields)
    axes_names = list(ref.coords)[len(index):]
    if len(axes_names) != 2:
        raise ValueError(f"field_comparison draws 2-D slices; the grid {list(ref.coords)} with index {index} "
                         f"leaves {len(axes_names)} axes.")
    x, y = ref.coords[axes_names[0]], ref.coords[axes_names[1]]
    fig = Figure(figsize=(12, 3.6 * len(names)), layout="constrained")
    axs = fig.subplots(len(names), 3, squeeze=False)
    for row, name in enumerate(names):
        p = np.asarray(pred[name])[index]
        r = np.asarray(ref.fields[name])[index]
        if p.ndim == 3:  # colour image
            p, r = np.clip(p, 0, 1), np.clip(r, 0, 1)
        vmin, vmax = float(np.min(r)), float(np.max(r))
        err = np.abs(p - r)
        extent = (x[0], x[-1], y[0], y[-1])
        for col, (data, label, kw) in enumerate([
            (p, "prediction", {"vmin": vmin, "vmax": vmax, "cmap": "RdBu_r"}),
            (r, "reference", {"vmin": vmin, "vmax": vmax, "cmap": "RdBu_r"}),
            (err if err.ndim == 2 else err.mean(-1), "|error|", {"cmap": "magma"}),
        ]):
            ax = axs[row, col]
            if ref.attrs.get("image"):
                # images are stored row-major (axis 0 = rows): draw them as images
                im = ax.imshow(data, cmap="gray" if data.ndim == 2 and col < 2 else kw["cmap"],
                               vmin=kw.get("vmin"), vmax=kw.get("vmax"))
                ax.set_axis_off()
            else:
                # u[i, j] = u(x_i, y_j): transpose so x runs horizontally
                im = ax.imshow(data.T, origin="lower", extent=extent, aspect="equal", **kw)
                ax.set_xlabel(axes_names[0])
                ax.set_ylabel(axes_names[1])
            ax.set_title(f"{name}: {label}")
            if data.ndim == 2:
                fig.colorbar(im, ax=ax, shrink=0.8, label=f"|{name} error|" if col == 2 else name)
    return save_figure(fig, path, title=title)


def loss_curves(history: list[dict], path: str | Path, *, title: str = "", x: str = "step") -> Path:
    """Each loss term and the total (log scale) against the step, the relative L2 error
    where it was evaluated, the term weights ``w_<term>`` where the history has them
    (fixed weights draw flat lines), and the causal weights ``causal_w<i>`` as an image
    over (step, time chunk).

    The optimizer stages (the rows' "phase") are shaded and named in every panel. ``x``
    "step" draws against the step with the wall time (the rows' "time") on a second
    axis on top; "time" draws against the wall time in seconds.
    """
    if x not in ("step", "time"):
        raise ValueError(f'x must be "step" or "time", got x={x!r}.')
    keys_all: list[str] = []
    for h in history:
        keys_all += [k for k in h if k not in keys_all]
    weight_keys = [k for k in keys_all if k.startswith("w_")]
    causal_keys = sorted((k for k in keys_all if k.startswith("causal_w")), key=lambda k: int(k[len("causal_w"):]))
    n_panels = 2 + bool(weight_keys) + bool(causal_keys)
    rows = 1 if n_panels == 2 else 2
    fig = Figure(figsize=(11, 4.3 * rows), layout="constrained")
    axes = list(np.ravel(fig.subplots(rows, 2)))
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    axes = axes[:n_panels]
    ax_loss, ax_err = axes[:2]
    steps = np.array([h["step"] for h in history], dtype=float)
    times = np.array([h.get("time", np.nan) for h in history], dtype=float)
    xs = steps if x == "step" else times
    # the history's columns that are not loss terms (Gauss-Newton's own, the errors)
    skip = {"step", "phase", "lr", "time", "rel_l2", "rel_l2_exact", "lambda", "mu", "gain", "accepted",
            "step_time"}
    keys = [k for k in keys_all if k not in skip and k not in weight_keys and k not in causal_keys
            and isinstance(history[0].get(k, 0.0), (int, float))]

    def column(k):
        return np.array([h.get(k, np.nan) for h in history], dtype=float)

    for k in keys:
        ax_loss.semilogy(xs, column(k), label=k, lw=1.8 if k == "loss" else 1.0)
    spans = _stage_spans(history, xs)
    for ax in axes:
        _mark_stages(ax, spans)
        ax.set_xlabel("step" if x == "step" else "wall time [s]")
        ax.grid(alpha=0.3)
    if x == "step" and len(steps) > 1 and np.all(np.diff(times) > 0) and np.all(np.diff(steps) > 0):
        for ax in axes[:2]:
            top = ax.secondary_xaxis("top", functions=(lambda s: _interp(s, steps, times),
                                                       lambda t: _interp(t, times, steps)))
            top.set_xlabel("wall time [s]")
    ax_loss.set_title("loss terms")
    ax_loss.set_ylabel("loss (unweighted terms, weighted total)")
    ax_loss.legend(fontsize=8)
    ev = [(xv, h["rel_l2"]) for xv, h in zip(xs, history) if "rel_l2" in h]
    exact = [(xv, h["rel_l2_exact"]) for xv, h in zip(xs, history) if "rel_l2_exact" in h]
    if exact:
        ax_err.semilogy(*zip(*exact), "s--", ms=3, lw=0.8, label="vs exact solution")
    if ev:
        s, e = zip(*ev)
        ax_err.semilogy(s, e, "o-", ms=3, label="vs FD reference")
        if exact:
            ax_err.legend(fontsize=8)
        err_title = f"relative L2 error vs reference (last {e[-1]:.2e})"
    else:
        err_title = "relative L2 error vs reference (not evaluated)"
    ax_err.set_title(err_title)
    ax_err.set_ylabel("relative L2 error")
    panel = 2
    if weight_keys:
        ax = axes[panel]
        for k in weight_keys:
            ax.semilogy(xs, column(k), label=k[2:])
        ax.set_title("term weights")
        ax.set_ylabel("weight")
        ax.legend(fontsize=8)
        panel += 1
    if causal_keys:
        ax = axes[panel]
        w = np.stack([column(k) for k in causal_keys])  # (chunks, logged steps)
        extent = (xs[0], xs[-1], -0.5, len(causal_keys) - 0.5) if len(xs) else None
        im = ax.imshow(w, origin="lower", aspect="auto", extent=extent, cmap="viridis", vmin=0.0, vmax=1.0,
                       interpolation="nearest")
        ax.set_ylabel("time chunk")
        ax.set_title("causal weights")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="causal weight")
    return save_figure(fig, path, title=title)


def _interp(v, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``fp(xp)`` at ``v``, continued linearly beyond both ends (a
    secondary axis needs an invertible map over the whole view)."""
    v = np.asarray(v, dtype=float)
    out = np.interp(v, xp, fp)
    lo = (fp[1] - fp[0]) / (xp[1] - xp[0]) if xp[1] != xp[0] else 0.0
    hi = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]) if xp[-1] != xp[-2] else 0.0
    out = np.where(v < xp[0], fp[0] + lo * (v - xp[0]), out)
    return np.where(v > xp[-1], fp[-1] + hi * (v - xp[-1]), out)


def _stage_spans(history: list[dict], xs: np.ndarray) -> list[tuple[str, float, float]]:
    """(stage label, first x, last x) of each run of rows with one "phase"; a repeated
    stage name gets a suffix, as in the timings ("adam_2")."""
    spans: list[tuple[str, float, float]] = []
    seen: dict[str, int] = {}
    previous = None
    for xv, h in zip(xs, history):
        phase = h.get("phase")
        if phase is None:
            continue
        if phase != previous:
            seen[phase] = seen.get(phase, 0) + 1
            name = phase if seen[phase] == 1 else f"{phase}_{seen[phase]}"
            start = spans[-1][2] if spans else xv
            spans.append((name, start, xv))
            previous = phase
        else:
            spans[-1] = (spans[-1][0], spans[-1][1], xv)
    return spans


def _mark_stages(ax, spans: list[tuple[str, float, float]]) -> None:
    """Shade every other stage, draw a dotted line at each stage start and name it."""
    if len(spans) < 2:
        if spans:
            ax.text(0.01, 0.98, spans[0][0], transform=ax.transAxes, va="top", fontsize=8, color="0.35")
        return
    for i, (name, lo, hi) in enumerate(spans):
        if i % 2:
            ax.axvspan(lo, hi, color="0.9", zorder=0)
        if i:
            ax.axvline(lo, color="grey", ls=":", lw=1)
        ax.text(lo, 0.98, f" {name}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="0.35")


def error_vs_time(t: np.ndarray, rel_l2_per_t, path: str | Path, *, title: str = "") -> Path:
    """The relative L2 error of each time slice (``evaluate(...)["rel_l2_per_t"]``)
    against t, log scale."""
    t = np.asarray(t, dtype=float)
    e = np.asarray(rel_l2_per_t, dtype=float)
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(t, e, "o-" if len(t) <= 20 else "-", ms=4)
    ax.set_xlabel("t")
    ax.set_ylabel("relative L2 error of the slice")
    ax.set_title("error of each time slice vs the reference (slices with u = 0 left out)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path, title=title)


def save_figure(fig: Figure, path: str | Path, *, title: str = "") -> Path:
    """Give ``fig`` its title and write it to ``path`` (folders created), 110 dpi."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
