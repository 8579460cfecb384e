"""Matplotlib figures: fields side by side, loss and error curves.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no
backend switching), so they work headless and inside other programs. Each public
function that writes a file has a ``_..._figure`` twin that returns the Figure unsaved,
for tests and for programs that want to change it.

Colour conventions, shared with :mod:`pinn_sine.figures`:

- a field of one sign gets a sequential colormap (viridis) over its range, a signed
  field a diverging one (RdBu_r) with limits symmetric about 0 (:func:`field_style`);
- an error is drawn as |error| on a logarithmic scale from max/1e4 to its max
  (:func:`error_norm`; smaller errors take the floor's colour, the colorbar is extended
  below), so the interior error stays visible beside a few hot spots; its label says what
  it is measured against: the exact solution where the problem has one, else the
  finite-difference reference.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from .validation.metrics import rel_l2
from .validation.reference import ReferenceField

#: colormaps of a field of one sign, a signed field and an |error|
SEQUENTIAL, DIVERGING, ERROR_CMAP = "viridis", "RdBu_r", "magma"
#: an |error| panel spans this many decades below its maximum
ERROR_DECADES = 4
#: a field whose values of the minority sign stay within this fraction of its largest
#: magnitude counts as one-signed (rounding noise of a positive field is not a sign)
SIGN_TOLERANCE = 1e-2


# ----- shared pieces ---------------------------------------------------------------------
def field_style(values, *, limits: tuple[float, float] | None = None) -> tuple[str, Normalize]:
    """(colormap name, norm) for drawing ``values``: sequential over (min, max) when the
    field has one sign, diverging over (-m, m), m = max |value|, when it has both.

    ``limits`` (lo, hi) replaces the values' own range for the norm (e.g. one time slice's
    range when the sign is decided over the whole field)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    m = max(abs(lo), abs(hi))
    signed = lo < -SIGN_TOLERANCE * m and hi > SIGN_TOLERANCE * m
    if limits is not None:
        lo, hi = limits
        m = max(abs(lo), abs(hi))
    if signed:
        m = m or 1.0
        return DIVERGING, Normalize(-m, m)
    if hi <= lo:
        lo, hi = lo - (abs(lo) or 1.0) * 0.5, hi + (abs(hi) or 1.0) * 0.5
    return SEQUENTIAL, Normalize(lo, hi)


def error_norm(*errors, mask=None) -> LogNorm:
    """A LogNorm shared by the |error| arrays ``errors``: from max/1e4 (``ERROR_DECADES``)
    to the largest finite value (over ``mask``, of the arrays' leading grid shape, when
    given); 1e-4..1 when every error is zero."""
    top = 0.0
    for e in errors:
        e = np.asarray(e, dtype=float)
        if mask is not None:
            e = e[mask]
        e = e[np.isfinite(e)]
        if e.size:
            top = max(top, float(e.max()))
    top = top if top > 0 else 1.0
    return LogNorm(top * 10.0 ** -ERROR_DECADES, top)


def _floored(err: np.ndarray, norm: LogNorm) -> np.ndarray:
    """``err`` with zeros and values below the norm's floor raised to the floor (a log
    scale would leave them blank)."""
    return np.maximum(err, norm.vmin)


def _extend(data, norm: Normalize) -> str:
    """The colorbar's ``extend`` for ``data`` drawn with ``norm``."""
    d = np.asarray(data, dtype=float)
    d = d[np.isfinite(d)]
    if not d.size:
        return "neither"
    below, above = bool(d.min() < norm.vmin), bool(d.max() > norm.vmax)
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get((below, above), "both")


def _error_extend(err, norm: Normalize) -> str:
    """The colorbar's ``extend`` of an |error| drawn floored with ``norm``: always below
    (values under the floor take its colour), above too where a value exceeds the top
    (set over a mask)."""
    return "both" if np.nanmax(err) > norm.vmax else "min"


def _rel_l2_or_none(pred, target, mask=None) -> float | None:
    try:
        return rel_l2(pred, target, mask)
    except ValueError:  # a zero target over the region
        return None


def _fmt(e: float | None) -> str:
    return "n/a (target = 0)" if e is None else f"{e:.1e}"


def draw_comparison(fig: Figure, axs, pred: np.ndarray, ref: np.ndarray, *, exact: np.ndarray | None = None,
                    name: str = "u", extent: tuple | None = None, xlabel: str, ylabel: str, aspect="equal",
                    mask: np.ndarray | None = None, points: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Draw one 2-D field into the row of axes ``axs``: the prediction, the target and the
    |error| against it (log scale, :func:`error_norm`); with ``exact`` the target is the
    exact solution and a fourth panel shows the FD reference's own error |ref - exact|, on
    the network error's scale unless it would all fall in that scale's bottom decade (then
    on its own, with its own colorbar).

    ``pred``, ``ref``, ``exact``: (n_a, n_b) arrays, u[i, j] = u(a_i, b_j), drawn with the
    first axis horizontal; ``extent`` (a_0, a_end, b_0, b_end); ``mask`` (n_a, n_b) the
    region the scales and errors are set over. ``axs`` holds 3 axes, 4 with ``exact``.

    Scattered points instead of a grid: ``points`` (a (n,), b (n,)) and ``pred``,
    ``ref``, ``exact``, ``mask`` of shape (n,); each panel is a scatter plot of the
    points coloured by the value (no ``extent``).
    Returns the images by role ("prediction", "target", "error", "reference_error")."""
    if (points is None) == (extent is None):
        raise ValueError("draw_comparison needs extent= (a grid) or points= (scattered points), not both or none.")
    target = ref if exact is None else exact
    cmap, norm = field_style(target if mask is None else target[mask])
    if points is None:
        kw = {"origin": "lower", "extent": extent, "aspect": aspect}

        def show(ax, data, **style):
            return ax.imshow(np.asarray(data).T, **style, **kw)
    else:
        size = float(np.clip(4e4 / max(len(points[0]), 1), 2.0, 40.0))  # dense clouds get small dots

        def show(ax, data, **style):
            ax.set_aspect(aspect)
            return ax.scatter(points[0], points[1], c=np.asarray(data), s=size, linewidths=0, **style)
    ims = {"prediction": show(axs[0], pred, cmap=cmap, norm=norm),
           "target": show(axs[1], target, cmap=cmap, norm=norm)}
    what = "exact solution" if exact is not None else "reference (FD)" if points is None else "reference"
    axs[0].set_title(f"{name}: prediction")
    axs[1].set_title(f"{name}: {what}")
    fig.colorbar(ims["target"], ax=list(axs[:2]), shrink=0.85, label=name, extend=_extend(pred, norm))
    err = np.abs(pred - target)
    enorm = error_norm(err, mask=mask)
    ref_err = None if exact is None else np.abs(ref - exact)
    # one scale for both errors unless the reference's would all lie in the bottom decade
    # of the network's (a blank panel): then it gets its own
    shared = ref_err is not None and error_norm(ref_err, mask=mask).vmax > 10 * enorm.vmin
    if shared:
        enorm = error_norm(err, ref_err, mask=mask)
    ims["error"] = show(axs[2], _floored(err, enorm), cmap=ERROR_CMAP, norm=enorm)
    if exact is None:
        axs[2].set_title(f"|{name} - {name}_ref|, rel L2 {_fmt(_rel_l2_or_none(pred, ref, mask))}")
        label = f"|{name} error| against reference"
    else:
        axs[2].set_title(f"network: |{name} - {name}_exact|\nrel L2 {_fmt(_rel_l2_or_none(pred, exact, mask))}")
        rnorm = enorm if shared else error_norm(ref_err, mask=mask)
        ims["reference_error"] = show(axs[3], _floored(ref_err, rnorm), cmap=ERROR_CMAP, norm=rnorm)
        axs[3].set_title(f"FD reference: |{name}_ref - {name}_exact|\n"
                         f"rel L2 {_fmt(_rel_l2_or_none(ref, exact, mask))}")
        label = f"|{name} error| against exact"
        if not shared:
            fig.colorbar(ims["reference_error"], ax=axs[3], shrink=0.85, extend=_error_extend(ref_err, rnorm),
                         label=f"|{name}_ref - {name}_exact| (own scale)")
    fig.colorbar(ims["error"], ax=list(axs[2:4] if shared else axs[2:3]), shrink=0.85, label=label,
                 extend=_error_extend(err, enorm))
    for ax in axs:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return ims


# ----- field comparison ------------------------------------------------------------------
def field_comparison(pred: dict[str, np.ndarray], ref: ReferenceField, path: str | Path, *,
                     title: str = "", index: tuple = (),
                     exact: Callable | dict[str, np.ndarray] | None = None) -> Path:
    """Prediction, target and |error| side by side for each field of a 2-D slice,
    written to ``path``.

    Prediction and target share one colour scale per field (sequential for a field of
    one sign, diverging about 0 for a signed one). The |error| is drawn on a log scale
    from max/1e4 to max (:func:`error_norm`). Without ``exact`` the target is the FD
    reference. ``exact`` (``problem.exact_solution``: a callable x (N, d) float64 tensor
    -> (N, out_dim), or its fields on the grid shaped like ``ref.fields``) makes the target
    the exact solution and adds a fourth panel, the reference's own error |ref - exact|,
    on the error's scale. For a field with more than two grid axes, ``index`` selects
    the leading axes (e.g. a time index).

    A scattered reference (from data, ``ref.scattered``) of two inputs is drawn as scatter
    plots of its points coloured by each value (``index`` must be empty); one of other
    inputs, or an image, is refused with ValueError.
    """
    return save_figure(_field_comparison_figure(pred, ref, index=index, exact=exact), path, title=title)


def _field_comparison_figure(pred: dict[str, np.ndarray], ref: ReferenceField, *, index: tuple = (),
                             exact: Callable | dict[str, np.ndarray] | None = None) -> Figure:
    names = list(ref.fields)
    if ref.scattered:
        return _scattered_comparison_figure(pred, ref, index=index, exact=exact)
    axes_names = list(ref.coords)[len(index):]
    if len(axes_names) != 2:
        raise ValueError(f"field_comparison draws 2-D slices; the grid {list(ref.coords)} with index {index} "
                         f"leaves {len(axes_names)} axes.")
    if callable(exact):
        from .validation.evaluate import exact_on_grid

        exact = exact_on_grid(exact, ref)
    x, y = ref.coords[axes_names[0]], ref.coords[axes_names[1]]
    mask = None if ref.mask is None else np.asarray(ref.mask)[index]
    ncols = 3 if exact is None else 4
    fig = Figure(figsize=(4.1 * ncols + 0.8, 3.7 * len(names)), layout="constrained")
    axs = fig.subplots(len(names), ncols, squeeze=False)
    for row, name in enumerate(names):
        p = np.asarray(pred[name])[index]
        r = np.asarray(ref.fields[name])[index]
        e = None if exact is None else np.asarray(exact[name])[index]
        if ref.attrs.get("image"):
            _image_row(fig, axs[row], name, p, r, e, mask)
        else:
            draw_comparison(fig, axs[row], p, r, exact=e, name=name, extent=(x[0], x[-1], y[0], y[-1]),
                            xlabel=axes_names[0], ylabel=axes_names[1], mask=mask)
    return fig


def _scattered_comparison_figure(pred: dict[str, np.ndarray], ref: ReferenceField, *, index: tuple = (),
                                 exact: Callable | dict[str, np.ndarray] | None = None) -> Figure:
    """:func:`field_comparison` of a scattered reference: scatter plots of its points."""
    axes_names = list(ref.coords)
    if index or len(axes_names) != 2 or ref.attrs.get("image"):
        raise ValueError(f"field_comparison draws scattered points of two inputs (no index, no image), got the "
                         f"inputs {axes_names}{f' with index {index}' if index else ''}; draw other scattered data "
                         "yourself from ref.points() and problem.predict(net, ref).")
    if callable(exact):
        from .validation.evaluate import exact_on_grid

        exact = exact_on_grid(exact, ref)
    a, b = (np.asarray(ref.coords[n]) for n in axes_names)
    mask = None if ref.mask is None else np.asarray(ref.mask)
    names = list(ref.fields)
    if any(np.asarray(ref.fields[n]).ndim != 1 for n in names):
        raise ValueError("field_comparison draws scattered fields of one channel; a field with channels "
                         f"{[n for n in names if np.asarray(ref.fields[n]).ndim != 1]} is not drawn.")
    ncols = 3 if exact is None else 4
    fig = Figure(figsize=(4.1 * ncols + 0.8, 3.7 * len(names)), layout="constrained")
    axs = fig.subplots(len(names), ncols, squeeze=False)
    for row, name in enumerate(names):
        e = None if exact is None else np.asarray(exact[name])
        draw_comparison(fig, axs[row], np.asarray(pred[name]), np.asarray(ref.fields[name]), exact=e, name=name,
                        points=(a, b), xlabel=axes_names[0], ylabel=axes_names[1], mask=mask)
    return fig


def _image_row(fig: Figure, axs, name: str, p, r, e, mask) -> None:
    """An image field (row-major, values in [0, 1]): grey or colour images and the
    |error| (mean over channels) on a log scale."""
    target = r if e is None else e
    p, target = np.clip(p, 0, 1), np.clip(target, 0, 1)
    grey = p.ndim == 2
    show = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grey else {}
    for ax, data, label in ((axs[0], p, "prediction"), (axs[1], target, "reference" if e is None else "exact")):
        im = ax.imshow(data, **show)
        ax.set_title(f"{name}: {label}")
        ax.set_axis_off()
    if grey:
        fig.colorbar(im, ax=list(axs[:2]), shrink=0.85, label=name)
    errs = [np.abs(p - target)] + ([] if e is None else [np.abs(np.clip(r, 0, 1) - target)])
    errs = [d if d.ndim == 2 else d.mean(-1) for d in errs]
    enorm = error_norm(*errs, mask=mask)
    against = "reference" if e is None else "exact"
    ims = []
    for ax, d, label in zip(axs[2:], errs, (f"|{name} error| (network)", f"|{name} error| (FD reference)")):
        ims.append(ax.imshow(_floored(d, enorm), cmap=ERROR_CMAP, norm=enorm))
        ax.set_title(label)
        ax.set_axis_off()
    fig.colorbar(ims[0], ax=list(axs[2:]), shrink=0.85, label=f"|{name} error| against {against}", extend="min")


# ----- loss curves -----------------------------------------------------------------------
#: history columns that are not loss terms (Gauss-Newton's own, the errors)
_NOT_TERMS = {"step", "phase", "lr", "time", "rel_l2", "rel_l2_exact", "lambda", "mu", "gain", "accepted",
              "step_time", "alpha"}


def loss_curves(history: list[dict], path: str | Path, *, title: str = "", x: str = "step",
                reference_error: float | None = None) -> Path:
    """Training curves stacked over one shared x axis, written to ``path``.

    Panels, each drawn only when the history has something for it: each loss term and
    the total (log scale); the relative L2 error at every row that has one, "rel_l2"
    labelled "vs FD reference" and "rel_l2_exact" "vs exact" (markers joined by lines;
    ``reference_error``, the reference's own estimated error, as a dashed line); the term
    weights ``w_<term>`` when any of them changes (constant weights other than 1 are
    named in the loss legend instead); the causal weights ``causal_w<i>`` as an image over
    (x, time chunk).

    The optimizer stages (the rows' "phase") are shaded in every panel and named inside
    the top one. ``x`` "step" draws against the step with the wall time (the rows'
    "time") on a second axis on top; "time" draws against the wall time in seconds.
    """
    # the title is set before the stage labels are placed, which lays the figure out
    return save_figure(_loss_figure(history, title=title, x=x, reference_error=reference_error), path)


def _loss_figure(history: list[dict], *, title: str = "", x: str = "step",
                 reference_error: float | None = None) -> Figure:
    if x not in ("step", "time"):
        raise ValueError(f'x must be "step" or "time", got x={x!r}.')
    keys_all: list[str] = []
    for h in history:
        keys_all += [k for k in h if k not in keys_all]
    weight_keys = [k for k in keys_all if k.startswith("w_")]
    causal_keys = sorted((k for k in keys_all if k.startswith("causal_w")), key=lambda k: int(k[len("causal_w"):]))
    steps = np.array([h["step"] for h in history], dtype=float)
    times = np.array([h.get("time", np.nan) for h in history], dtype=float)
    xs = steps if x == "step" else times

    def column(k):
        return np.array([h.get(k, np.nan) if isinstance(h.get(k), (int, float)) else np.nan for h in history],
                        dtype=float)

    weights = {k: column(k) for k in weight_keys}
    varying = [k for k, w in weights.items() if np.any(np.isfinite(w)) and np.nanmax(w) > np.nanmin(w)]
    fixed = {} if varying else {k[2:]: float(np.nanmax(w)) for k, w in weights.items() if np.any(np.isfinite(w))}
    keys = [k for k in keys_all if k not in _NOT_TERMS and k not in weight_keys and k not in causal_keys
            and np.any(np.isfinite(column(k)))]
    evals = {label: [(xv, h[key]) for xv, h in zip(xs, history) if isinstance(h.get(key), (int, float))]
             for key, label in (("rel_l2_exact", "vs exact"), ("rel_l2", "vs FD reference"))}
    evals = {label: pts for label, pts in evals.items() if pts}
    panels = (["loss"] + (["error"] if evals else []) + (["weights"] if varying else [])
              + (["causal"] if causal_keys else []))

    fig = Figure(figsize=(9.0, 1.3 + 2.7 * len(panels)), layout="constrained")
    if title:
        fig.suptitle(title)
    axes = list(fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0])
    panel = dict(zip(panels, axes))
    legend = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "borderaxespad": 0.0}

    ax = panel["loss"]
    for k in keys:
        w = fixed.get(k)
        label = k if w is None or w == 1.0 else f"{k} (weight {w:g})"
        ax.semilogy(xs, column(k), label=label, lw=1.8 if k == "loss" else 1.0)
    ax.set_title("loss terms", loc="left", fontsize=10)
    ax.set_ylabel("loss")
    if keys:
        ax.legend(title="unweighted terms,\nweighted total", title_fontsize=8, **legend)

    if "error" in panel:
        ax = panel["error"]
        styles = {"vs exact": {"marker": "s", "ms": 3.5, "lw": 1.2},
                  "vs FD reference": {"marker": "o", "ms": 3.0, "lw": 1.0, "ls": "--" if len(evals) > 1 else "-"}}
        for label, pts in evals.items():
            ax.semilogy(*zip(*pts), label=label, **styles[label])
        if reference_error:
            ax.axhline(reference_error, color="0.45", ls=":", lw=1.2, label="FD reference's own error")
        last = ", ".join(f"{pts[-1][1]:.1e} {label}" for label, pts in evals.items())
        ax.set_title(f"relative L2 error (last: {last})", loc="left", fontsize=10)
        ax.set_ylabel("relative L2 error")
        ax.legend(**legend)

    if "weights" in panel:
        ax = panel["weights"]
        w_all = np.concatenate([w[np.isfinite(w) & (w > 0)] for w in weights.values()])
        if w_all.size and w_all.max() > 10 * w_all.min():  # a log scale only where it spans a decade
            ax.set_yscale("log")
        for k in weight_keys:
            ax.plot(xs, weights[k], label=k[2:])
        ax.set_title("term weights", loc="left", fontsize=10)
        ax.set_ylabel("weight")
        ax.legend(**legend)

    if "causal" in panel:
        ax = panel["causal"]
        w = np.stack([column(k) for k in causal_keys])  # (chunks, logged steps)
        extent = (xs[0], xs[-1], -0.5, len(causal_keys) - 0.5) if len(xs) else None
        im = ax.imshow(w, origin="lower", aspect="auto", extent=extent, cmap="viridis", vmin=0.0, vmax=1.0,
                       interpolation="nearest")
        ax.set_ylabel("time chunk")
        ax.set_title("causal weights", loc="left", fontsize=10)
        fig.colorbar(im, ax=ax, label="causal weight", pad=0.01)
        if len(xs) > 1:  # the image fills its extent exactly; keep the other panels' end markers whole
            margin = 0.02 * (xs[-1] - xs[0])
            ax.set_xlim(xs[0] - margin, xs[-1] + margin)

    spans = _stage_spans(history, xs)
    for ax in axes:
        _mark_stages(ax, spans)
        if ax is not panel.get("causal"):
            ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step" if x == "step" else "wall time [s]")
    if x == "step" and len(steps) > 1 and np.all(np.diff(times) > 0) and np.all(np.diff(steps) > 0):
        _wall_time_axis(axes[0], steps, times)
    if len(spans) > 1:
        _name_stages(fig, axes[0], spans)
    elif spans:
        axes[0].set_title(f"loss terms ({spans[0][0]})", loc="left", fontsize=10)
    for ax in axes:
        _tidy_log_axis(ax)
    return fig


def _tidy_log_axis(ax) -> None:
    """Plain ticks ("2.1") on a log y axis spanning less than a decade, where matplotlib
    would label the minor ticks "2.1 x 10^0" or, on a narrow range, nothing."""
    from matplotlib.ticker import MaxNLocator, NullFormatter, StrMethodFormatter

    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log" and lo > 0 and hi / lo < 10:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(lo, hi)


def _wall_time_axis(ax, steps: np.ndarray, times: np.ndarray) -> None:
    """The wall time on a second x axis on top of ``ax``, its ticks at round times and at
    least a ninth of the axis apart (the step -> time map is steep where steps are slow,
    e.g. Gauss-Newton, and evenly spaced times would pile up there)."""
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    top = ax.secondary_xaxis("top", functions=(lambda s: _interp(s, steps, times),
                                               lambda t: _interp(t, times, steps)))
    top.set_xlabel("wall time [s]", fontsize=9)
    gap = (steps[-1] - steps[0]) / 9

    def step_of(t):
        return float(_interp(t, times, steps))

    kept: list[float] = []
    # round times first, then finer ones where the round ones leave a wide gap (slow steps)
    for nbins, apart in ((8, gap), (20, 1.5 * gap)):
        for t in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(times[0], times[-1]):
            if times[0] <= t <= times[-1] and all(abs(step_of(t) - step_of(k)) >= apart for k in kept):
                kept.append(float(t))
    kept.sort()
    top.set_xticks(kept)
    top.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    top.tick_params(labelsize=8)


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
    """Shade every other stage and draw a dotted line at each stage start."""
    if len(spans) < 2:
        return
    for i, (name, lo, hi) in enumerate(spans):
        if i % 2:
            ax.axvspan(lo, hi, color="0.9", zorder=0)
        if i:
            ax.axvline(lo, color="grey", ls=":", lw=1)


def _name_stages(fig: Figure, ax, spans: list[tuple[str, float, float]]) -> None:
    """Name each stage inside ``ax``, at the top of its band: a label that would run past
    the right edge is right-aligned there, one that would overlap an earlier label moves
    down a line. Text sizes are only known after a layout, so the figure is laid out
    once here (the layout does not move afterwards: the labels are outside it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    x0, x1 = ax.get_xlim()
    pad = 0.006
    texts = []
    for name, lo, _ in spans:
        if not np.isfinite(lo):
            continue
        xa = min(max((lo - x0) / (x1 - x0), 0.0), 1.0) + pad
        texts.append(ax.text(xa, 1.0 - pad, name, transform=ax.transAxes, ha="left", va="top", fontsize=8,
                             color="0.25", in_layout=False,
                             bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}))
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    placed = []
    for text in texts:
        ext = text.get_window_extent(renderer)
        if ext.x1 > box.x1 - pad * box.width:
            text.set_x(1.0 - pad)
            text.set_ha("right")
        for _ in range(len(texts)):
            ext = text.get_window_extent(renderer)
            if not any(ext.overlaps(other) for other in placed):
                break
            text.set_y(text.get_position()[1] - (ext.height + 2.0) / box.height)
        placed.append(text.get_window_extent(renderer))
    # headroom: the data stay below the lowest label
    lowest = min((b.y0 - box.y0) / box.height for b in placed) - 0.03 if placed else 1.0
    lo, hi = ax.get_ylim()
    if 0.5 < lowest < 1.0:
        if ax.get_yscale() == "log":
            span = np.log10(hi) - np.log10(lo)
            ax.set_ylim(lo, 10 ** (np.log10(lo) + span / lowest))
        else:
            ax.set_ylim(lo, lo + (hi - lo) / lowest)


# ----- error against time ----------------------------------------------------------------
def coefficient_history(history: list[dict], path: str | Path, *, problem=None, estimates: dict | None = None,
                        title: str = "") -> Path:
    """The unknowns of an inverse problem against the step (the history's ``coef_<name>``
    columns, ``coef_<name>_rms`` for a vector), one panel each, the optimizer stages
    shaded. With ``estimates`` (:func:`pinn_sine.inverse.estimate`) the final value's
    +-2 standard errors are a bar at the last step and, where the truth is known, it is a
    dashed line and a second axis shows the relative error (log scale)."""
    return save_figure(_coefficient_figure(history, problem=problem, estimates=estimates or {}), path, title=title)


def _coefficient_figure(history: list[dict], *, problem=None, estimates: dict) -> Figure:
    keys: list[str] = []
    for h in history:
        keys += [k for k in h if k.startswith("coef_") and k not in keys]
    if not keys:
        raise ValueError("the history has no coef_<name> columns: the run had no unknowns.")
    steps = np.array([h["step"] for h in history], dtype=float)
    fig = Figure(figsize=(6.4, 2.6 * len(keys) + 0.4), layout="constrained")
    axs = np.atleast_1d(fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0])
    spans = _stage_spans(history, steps)
    for ax, key in zip(axs, keys):
        name = key[len("coef_"):]
        vector = name.endswith("_rms") and name[:-4] in (problem.unknowns if problem is not None else {})
        base = name[:-4] if vector else name
        values = np.array([h.get(key, np.nan) for h in history], dtype=float)
        ax.plot(steps, values, "-", lw=1.3, label=f"{base} (rms of the entries)" if vector else base)
        est = estimates.get(base)
        truth = None if est is None or vector else est.truth
        if truth is not None:
            ax.axhline(truth, ls="--", color="k", lw=0.9, label=f"truth {truth:g}")
        if est is not None and not vector:
            ax.errorbar([steps[-1]], [est.value], yerr=[[2 * est.std_error]], fmt="o", ms=3.5, capsize=3,
                        color="C3", label=f"{est.value:.8g} +- {est.std_error:.2g} (1 se; bar: 2 se)")
        ax.set_ylabel(key)
        _mark_stages(ax, spans)
        ax.grid(alpha=0.3)
        if truth is not None and truth != 0:
            twin = ax.twinx()
            twin.semilogy(steps, np.abs(values - truth) / abs(truth), ":", color="C2", lw=1.1)
            twin.set_ylabel("relative error", color="C2", fontsize=8)
            _tidy_log_axis(twin)
        ax.legend(fontsize=7, loc="best")
    axs[-1].set_xlabel("step")
    _name_stages(fig, axs[0], spans)
    return fig


def error_vs_time(t: np.ndarray, rel_l2_per_t, path: str | Path, *, title: str = "",
                  rel_l2_exact_per_t=None) -> Path:
    """The relative L2 error of each time slice against t, log scale: against the FD
    reference (``evaluate(...)["rel_l2_per_t"]``) and, given ``rel_l2_exact_per_t``,
    against the exact solution. Slices where the target is zero (NaN) are left out."""
    fig = _error_vs_time_figure(t, rel_l2_per_t, rel_l2_exact_per_t=rel_l2_exact_per_t)
    return save_figure(fig, path, title=title)


def _error_vs_time_figure(t: np.ndarray, rel_l2_per_t, *, rel_l2_exact_per_t=None) -> Figure:
    t = np.asarray(t, dtype=float)
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    series = [] if rel_l2_exact_per_t is None else [("vs exact", rel_l2_exact_per_t, "s-")]
    series.append(("vs FD reference", rel_l2_per_t, "o--" if series else "o-"))
    for label, e, style in series:
        e = np.asarray(e, dtype=float)
        ax.semilogy(t, e, style if len(t) <= 60 else style.replace("o", "").replace("s", ""), ms=3.5, lw=1.1,
                    label=label)
    ax.set_xlabel("t")
    ax.set_ylabel("relative L2 error of the slice")
    ax.set_title("error of each time slice" + (" (slices with u = 0 left out)"
                                               if any(np.isnan(np.asarray(e, float)).any() for _, e, _ in series)
                                               else ""), fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _tidy_log_axis(ax)
    return fig


def save_figure(fig: Figure, path: str | Path, *, title: str = "", dpi: int = 110) -> Path:
    """Give ``fig`` its title and write it to ``path`` (folders created), 110 dpi."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
