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
                fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path, title=title)


def loss_curves(history: list[dict], path: str | Path, *, title: str = "") -> Path:
    """Each loss term and the total (log scale) against the step, the relative L2 error
    where it was evaluated, the term weights ``w_<term>`` where the history has them
    (fixed weights draw flat lines), and the causal weights ``causal_w<i>`` as an image
    over (step, time chunk)."""
    keys_all: list[str] = []
    for h in history:
        keys_all += [k for k in h if k not in keys_all]
    weight_keys = [k for k in keys_all if k.startswith("w_")]
    causal_keys = sorted((k for k in keys_all if k.startswith("causal_w")), key=lambda k: int(k[len("causal_w"):]))
    n_panels = 2 + bool(weight_keys) + bool(causal_keys)
    rows = 1 if n_panels == 2 else 2
    fig = Figure(figsize=(11, 4 * rows), layout="constrained")
    axes = list(np.ravel(fig.subplots(rows, 2)))
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    axes = axes[:n_panels]
    ax_loss, ax_err = axes[:2]
    steps = np.array([h["step"] for h in history])
    skip = {"step", "phase", "lr", "time", "rel_l2"}
    keys = [k for k in keys_all if k not in skip and k not in weight_keys and k not in causal_keys
            and isinstance(history[0].get(k, 0.0), (int, float))]

    def column(k):
        return np.array([h.get(k, np.nan) for h in history], dtype=float)

    for k in keys:
        ax_loss.semilogy(steps, column(k), label=k, lw=1.8 if k == "loss" else 1.0)
    lbfgs = [h["step"] for h in history if h.get("phase") == "lbfgs"]
    for ax in axes:
        if lbfgs:
            ax.axvline(min(lbfgs), color="grey", ls=":", lw=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_loss.set_title("loss terms")
    ax_loss.legend(fontsize=8)
    ev = [(h["step"], h["rel_l2"]) for h in history if "rel_l2" in h]
    if ev:
        s, e = zip(*ev)
        ax_err.semilogy(s, e, "o-", ms=3)
    ax_err.set_title("relative L2 error vs reference")
    panel = 2
    if weight_keys:
        ax = axes[panel]
        for k in weight_keys:
            ax.semilogy(steps, column(k), label=k[2:])
        ax.set_title("term weights")
        ax.legend(fontsize=8)
        panel += 1
    if causal_keys:
        ax = axes[panel]
        w = np.stack([column(k) for k in causal_keys])  # (chunks, logged steps)
        extent = (steps[0], steps[-1], -0.5, len(causal_keys) - 0.5) if len(steps) else None
        im = ax.imshow(w, origin="lower", aspect="auto", extent=extent, cmap="viridis", vmin=0.0, vmax=1.0,
                       interpolation="nearest")
        ax.set_ylabel("time chunk")
        ax.set_title("causal weights")
        ax.grid(False)
        fig.colorbar(im, ax=ax)
    return save_figure(fig, path, title=title)


def save_figure(fig: Figure, path: str | Path, *, title: str = "") -> Path:
    """Give ``fig`` its title and write it to ``path`` (folders created), 110 dpi."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
