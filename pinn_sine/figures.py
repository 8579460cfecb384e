"""The problems' own figures, one function per problem (beside :mod:`pinn_sine.plots`,
the generic ones). :func:`problem_figures` picks the problem's function; a problem
without one, or a scattered reference, gets None, and its callers draw
:func:`~pinn_sine.plots.field_comparison`.

The colour conventions are :mod:`pinn_sine.plots`'s: sequential colormaps for fields of
one sign, diverging ones centred at 0 for signed fields, |error| on a log scale from
max/1e4 to max. Where the problem has an exact solution (``problem.exact_solution``)
the errors drawn and the title's headline error are against it, with the error against
the FD reference beside it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from .plots import (DIVERGING, ERROR_CMAP, SEQUENTIAL, _error_extend, _error_vs_time_figure, _extend, _floored,
                    draw_comparison, error_norm, field_style)
from .problems import HelmholtzPointSource, Inpainting, Wave1D, Wave2D
from .validation.evaluate import describe_errors
from .validation.metrics import rel_l2
from .validation.reference import ReferenceField

#: (file name, figure, dpi) of each figure a problem draws
Figures = list[tuple[str, Figure, int]]


def problem_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *, activation: str | None = None,
                    **options) -> list[Path] | None:
    """Write ``problem``'s own figures of ``net`` against ``ref`` to ``out_dir`` and return
    their paths; None for a problem without figures of its own. Every figure is titled
    with the problem, ``activation`` (the label of the net; None: its config's
    activation name) and the error (against the exact solution where the problem has
    one, :func:`~pinn_sine.validation.evaluate.describe_errors`). ``options`` go to the problem's function
    (Inpainting: ``method``, the FD inpainting shown beside the net)."""
    figures = _problem_figures(problem, net, ref, activation=activation, **options)
    return None if figures is None else _save_all(figures, out_dir)


def _problem_figures(problem, net: nn.Module, ref: ReferenceField, *, activation: str | None = None,
                     **options) -> Figures | None:
    """The figures :func:`problem_figures` writes, unsaved; None for a problem without
    figures of its own, or for a scattered reference (from data: the problems' own
    figures draw grids; :func:`~pinn_sine.plots.field_comparison` draws scattered
    points)."""
    if ref.scattered:
        return None
    for cls, draw in BUILDERS.items():
        if isinstance(problem, cls):
            return draw(problem, net, ref, activation=activation, **options)
    return None


def net_label(net: nn.Module, activation: str | None = None) -> str:
    """``activation``, else the activation name in the net's config, else its class name."""
    if activation:
        return activation
    return str(getattr(net, "config", {}).get("activation") or type(net).__name__)


def _heading(problem, net, activation, errors: dict) -> str:
    return f"{problem.name} / {net_label(net, activation)}: {describe_errors(errors)}"


def _save_all(figures: Figures, out_dir) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig, dpi in figures:
        paths.append(out_dir / name)
        fig.savefig(paths[-1], dpi=dpi)
    return paths


def _exact_u(problem, ref: ReferenceField) -> np.ndarray | None:
    """The exact solution's "u" on the reference grid, None without one."""
    from .validation.evaluate import exact_on_grid

    exact = problem.exact_solution
    return None if exact is None else exact_on_grid(exact, ref)["u"]


def _per_t(pred: np.ndarray, target: np.ndarray, mask) -> list[float]:
    """The relative L2 error of each time slice (axis 0), NaN where the target is zero."""
    out = []
    for k in range(len(target)):
        m = None if mask is None else mask[k]
        t = target[k] if m is None else target[k][m]
        out.append(float("nan") if not np.any(t) else rel_l2(pred[k], target[k], m))
    return out


def _error_vs_time(problem, net, activation, ref: ReferenceField, errors: dict, pred: np.ndarray,
                   exact: np.ndarray | None) -> tuple[str, Figure, int]:
    per_t_exact = None if exact is None else _per_t(pred, exact, ref.mask)
    fig = _error_vs_time_figure(ref.coords["t"], errors["rel_l2_per_t"], rel_l2_exact_per_t=per_t_exact)
    fig.suptitle(_heading(problem, net, activation, errors))
    return f"{problem.name}_error_t.png", fig, 110


# ----- the point source ------------------------------------------------------------------
def helmholtz_point_source_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                                   activation: str | None = None) -> list[Path]:
    """Real part, imaginary part and magnitude (columns) of the prediction, the FD
    reference and the |error| against it (rows; log scale, one scale for the three error
    panels set over the physical region), with the physical region outlined, written to
    ``out_dir/<name>_fields.png``; the velocity model to ``out_dir/<name>_velocity.png``.
    Returns the paths written."""
    return _save_all(_helmholtz_point_source(problem, net, ref, activation=activation), out_dir)


def _helmholtz_point_source(problem, net: nn.Module, ref: ReferenceField, *,
                            activation: str | None = None) -> Figures:
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from .validation.evaluate import evaluate

    pred = problem.predict(net, ref)
    errors = evaluate(net, ref, prediction=pred, exact=problem.exact_solution)
    p = pred["u_real"] + 1j * pred["u_imag"]
    r = ref.fields["u_real"] + 1j * ref.fields["u_imag"]
    x, y = ref.coords["x"], ref.coords["y"]
    extent = (x[0], x[-1], y[0], y[-1])
    mask = ref.mask if ref.mask is not None else np.ones(r.shape, bool)
    vmax = float(np.abs(r[mask]).max()) or 1.0
    parts = (("real", np.real, "Re u"), ("imaginary", np.imag, "Im u"), ("magnitude", np.abs, "|u|"))
    (px0, px1), (py0, py1) = problem.physical
    errs = [np.abs(part(p) - part(r)) for _, part, _ in parts]
    enorm = error_norm(*errs, mask=mask)
    fig = Figure(figsize=(11.5, 12.0), layout="constrained")
    axes = fig.subplots(3, 3)
    for j, (label, part, symbol) in enumerate(parts):
        # real and imaginary parts are signed; the magnitude is not
        cmap, norm = (SEQUENTIAL, Normalize(0.0, vmax)) if label == "magnitude" else (DIVERGING,
                                                                                      Normalize(-vmax, vmax))
        rows = (("prediction", part(p), cmap, norm), ("reference (FD)", part(r), cmap, norm),
                ("|error|", _floored(errs[j], enorm), ERROR_CMAP, enorm))
        for i, (title, data, cmap_, norm_) in enumerate(rows):
            ax = axes[i, j]
            im = ax.imshow(data.T, origin="lower", extent=extent, cmap=cmap_, norm=norm_)
            ax.add_patch(Rectangle((px0, py0), px1 - px0, py1 - py0, fill=False, ls="--", lw=0.8,
                                   ec="w" if i == 2 else "k"))
            ax.set_title(f"{title}: {label}" + (f" of u\nrel L2 {rel_l2(part(p), part(r), mask):.1e}"
                                                  if i == 2 else ""), fontsize=10)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            if i == 1:
                fig.colorbar(im, ax=list(axes[:2, j]), shrink=0.8, aspect=25, location="bottom", label=symbol,
                             extend=_extend(part(p), norm))
    fig.colorbar(im, ax=list(axes[2]), shrink=0.5, aspect=40, location="bottom", label="|error| against reference",
                 extend=_error_extend(np.stack(errs), enorm))
    fig.suptitle(f"{_heading(problem, net, activation, errors)} (|u|: {errors['rel_l2_abs']:.1e}); "
                 "dashed: the physical region (errors measured inside)")
    figures = [(f"{problem.name}_fields.png", fig, 100)]

    X, Y = np.meshgrid(x, y, indexing="ij")
    c = np.asarray(problem.speed_model.on_grid(X, Y), dtype=float)
    fig = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots()
    uniform = bool(np.ptp(c) <= 1e-12 * np.abs(c).max())
    # a uniform speed is drawn in the colormap's middle colour
    span = {"vmin": 0.5 * c.flat[0], "vmax": 1.5 * c.flat[0]} if uniform else {}
    im = ax.imshow(c.T, origin="lower", extent=extent, cmap="cividis", **span)
    ax.add_patch(Rectangle((px0, py0), px1 - px0, py1 - py0, fill=False, ls="--", lw=0.8, ec="w"))
    ax.plot(*problem.center, "r*", ms=10)
    what = f"uniform c = {c.flat[0]:g}" if uniform else "velocity c(x, y)"
    ax.set_title(f"{problem.name}: {what}, omega = {problem.omega:g}\n"
                 f"(* source; {net_label(net, activation)} {describe_errors(errors)})", fontsize=9)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.locator_params(nbins=5)
    if not uniform:  # a colour scale of one value says nothing the title does not
        fig.colorbar(im, ax=ax, label="c")
    figures.append((f"{problem.name}_velocity.png", fig, 100))
    return figures


# ----- the wave equations ----------------------------------------------------------------
def wave1d_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                   activation: str | None = None) -> list[Path]:
    """The x-t images of the prediction, the exact solution, the network's |error|
    against it and the FD reference's own |error| (log scale, shared), written to
    ``out_dir/wave1d_xt.png`` (without an exact solution: prediction, FD reference and
    the |error| against it), and the error of each time slice against t, against the
    exact solution and the FD reference, ``out_dir/wave1d_error_t.png``; returns the
    paths written."""
    return _save_all(_wave1d(problem, net, ref, activation=activation), out_dir)


def _wave1d(problem, net: nn.Module, ref: ReferenceField, *, activation: str | None = None) -> Figures:
    from .validation.evaluate import evaluate, predict

    pred = predict(net, ref)["u"]
    exact = _exact_u(problem, ref)
    errors = evaluate(net, ref, prediction={"u": pred}, exact=problem.exact_solution)
    t, x = ref.coords["t"], ref.coords["x"]
    ncols = 3 if exact is None else 4
    fig = Figure(figsize=(4.1 * ncols + 0.8, 4.0), layout="constrained")
    axes = fig.subplots(1, ncols)
    draw_comparison(fig, axes, pred, ref.fields["u"], exact=exact, name="u", extent=(t[0], t[-1], x[0], x[-1]),
                    xlabel="t", ylabel="x", aspect="auto", mask=ref.mask)
    fig.suptitle(_heading(problem, net, activation, errors))
    return [(f"{problem.name}_xt.png", fig, 120),
            _error_vs_time(problem, net, activation, ref, errors, pred, exact)]


def wave2d_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                   activation: str | None = None) -> list[Path]:
    """A strip of snapshots at the reference times: rows prediction, target (the FD
    reference, or the exact solution where there is one) and |error|, one column per
    time. Prediction and target share a colour scale per time (the wave spreads and
    fades, so one scale would hide the late times; diverging about 0 for a signed field);
    the |error| row has one log scale for all times, so the error's growth shows. Written
    to ``out_dir/wave2d_snapshots.png``; the error at each snapshot time against t to
    ``out_dir/wave2d_error_t.png``. Returns the paths written."""
    return _save_all(_wave2d(problem, net, ref, activation=activation), out_dir)


def _wave2d(problem, net: nn.Module, ref: ReferenceField, *, activation: str | None = None) -> Figures:
    from .validation.evaluate import evaluate, predict

    pred = predict(net, ref)["u"]
    exact = _exact_u(problem, ref)
    errors = evaluate(net, ref, prediction={"u": pred}, exact=problem.exact_solution)
    target = ref.fields["u"] if exact is None else exact
    per_t = errors["rel_l2_per_t"] if exact is None else _per_t(pred, exact, ref.mask)
    t, x, y = ref.coords["t"], ref.coords["x"], ref.coords["y"]
    extent = (x[0], x[-1], y[0], y[-1])
    err = np.abs(pred - target)
    enorm = error_norm(err, mask=ref.mask)
    against = "reference" if exact is None else "exact"
    what = "reference (FD)" if exact is None else "exact"
    nt = len(t)
    fig = Figure(figsize=(3.2 * nt + 0.8, 9.6), layout="constrained")
    axes = fig.subplots(3, nt, squeeze=False)
    for k in range(nt):
        # the sign is the whole field's, the range each time's own
        cmap, norm = field_style(target, limits=(float(target[k].min()), float(target[k].max())))
        rows = (("prediction", pred[k], cmap, norm), (what, target[k], cmap, norm),
                ("|error|", _floored(err[k], enorm), ERROR_CMAP, enorm))
        for i, (label, data, cmap_, norm_) in enumerate(rows):
            ax = axes[i, k]
            im = ax.imshow(data.T, origin="lower", extent=extent, cmap=cmap_, norm=norm_)
            if i == 0:
                e = per_t[k]
                ax.set_title(f"t = {t[k]:.3g}\nrel L2 {e:.1e}" if np.isfinite(e) else f"t = {t[k]:.3g}\n(u = 0)",
                             fontsize=10)
            ax.set_xlabel("x" if i == 2 else "")
            if i < 2:
                ax.tick_params(labelbottom=False)
            ax.set_ylabel(f"{label}\ny" if k == 0 else "")
            if k:
                ax.tick_params(labelleft=False)
            if i == 1:
                fig.colorbar(im, ax=list(axes[:2, k]), shrink=0.8, aspect=20, location="bottom", label="u",
                             extend=_extend(pred[k], norm))
    fig.colorbar(im, ax=list(axes[2]), shrink=0.5, aspect=40, location="bottom",
                 label=f"|u error| against {against}", extend=_error_extend(err, enorm))
    fig.suptitle(_heading(problem, net, activation, errors) + " (u scales per time, one |error| scale)")
    return [(f"{problem.name}_snapshots.png", fig, 110),
            _error_vs_time(problem, net, activation, ref, errors, pred, exact)]


# ----- inpainting ------------------------------------------------------------------------
def inpainting_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                       method: str = "biharmonic", activation: str | None = None) -> list[Path]:
    """Write inpainting.png (ground truth, masked input, network, FD ``method``, the
    two |error| maps against the true image, on one log scale), inpainting_zoom.png (a
    central crop of each, at pixel resolution) and inpainting_render4x.png (the crop
    rendered by the net at 4x resolution beside the pixels it was fitted to). Returns
    the paths."""
    return _save_all(_inpainting(problem, net, ref, method=method, activation=activation), out_dir)


def _inpainting(problem, net: nn.Module, ref: ReferenceField, *, method: str = "biharmonic",
                activation: str | None = None) -> Figures:
    from .validation.evaluate import evaluate

    truth = ref.fields["u"]
    pred = np.clip(problem.render(net), 0.0, 1.0)
    fd_img = np.clip(problem.classical(method).fields["u"], 0.0, 1.0)
    m_net = evaluate(net, ref, prediction=problem.predict(net))
    m_fd = evaluate(None, ref, prediction={"u": fd_img})
    name = net_label(net, activation)

    def scores(m: dict) -> str:
        return (f"PSNR {m['psnr']:.1f} dB, SSIM {m['ssim']:.3f}\n"
                f"missing region: PSNR {m['psnr_region']:.1f} dB, SSIM {m['ssim_region']:.3f}")
    grey = truth.ndim == 2
    masked = np.repeat(truth[..., None], 3, axis=-1) if grey else truth.copy()
    masked[problem.missing] = (1.0, 0.0, 0.0)  # missing pixels in red
    err_net = np.abs(pred - truth) if grey else np.abs(pred - truth).mean(-1)
    err_fd = np.abs(fd_img - truth) if grey else np.abs(fd_img - truth).mean(-1)
    enorm = error_norm(err_net, err_fd)
    show = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grey else {}
    figures = []

    fig = Figure(figsize=(15, 8.6), layout="constrained")
    axs = fig.subplots(2, 3)
    known = f"input ({100 * problem.known_fraction:.0f}% known, missing in red)"
    panels = [(truth, "ground truth", show), (masked, known, show),
              (pred, f"network ({name})\n{scores(m_net)}", show), (fd_img, f"FD {method}\n{scores(m_fd)}", show),
              (_floored(err_net, enorm), "|network - truth|", {"cmap": ERROR_CMAP, "norm": enorm}),
              (_floored(err_fd, enorm), f"|FD {method} - truth|", {"cmap": ERROR_CMAP, "norm": enorm})]
    for ax, (img, title, kw) in zip(axs.ravel(), panels):
        im = ax.imshow(img, **kw)
        ax.set_title(title, fontsize=10)
        _pixel_axes(ax)
        if grey and ax is axs[0, 0]:
            grey_im = im
    if grey:  # one grey scale, 0..1, for the four images
        fig.colorbar(grey_im, ax=list(axs[0]), shrink=0.85, label="intensity")
    fig.colorbar(im, ax=list(axs[1, 1:]), shrink=0.85, label="|error| against the true image (intensity, 0..1)",
                 extend="min")
    heading = (f"{problem.name} / {name}: PSNR {m_net['psnr']:.1f} dB, SSIM {m_net['ssim']:.3f} "
               f"(FD {method}: {m_fd['psnr']:.1f} dB, {m_fd['ssim']:.3f})")
    fig.suptitle(heading)
    figures.append(("inpainting.png", fig, 100))

    H, W = problem.shape
    ci, cj = slice(3 * H // 8, 5 * H // 8 + 1), slice(3 * W // 8, 5 * W // 8 + 1)
    # the crop in the image's pixel coordinates (pixel centres at integers)
    crop_extent = (cj.start - 0.5, cj.stop - 0.5, ci.stop - 0.5, ci.start - 0.5)
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    axs = fig.subplots(1, 4)
    for ax, (img, title) in zip(axs, [(truth, "truth"), (masked, "input"), (pred, "network"),
                                      (fd_img, f"FD {method}")]):
        ax.imshow(img[ci, cj], interpolation="nearest", extent=crop_extent, **show)
        ax.set_title(f"{title} (crop)")
        _pixel_axes(ax)
    fig.suptitle(heading)
    figures.append(("inpainting_zoom.png", fig, 100))

    x, y = ref.coords["x"], ref.coords["y"]
    crop_bounds = ((float(x[ci.start]), float(x[ci.stop - 1])), (float(y[cj.start]), float(y[cj.stop - 1])))
    nh, nw = ci.stop - ci.start, cj.stop - cj.start
    fine = np.clip(problem.render(net, (4 * (nh - 1) + 1, 4 * (nw - 1) + 1), bounds=crop_bounds), 0.0, 1.0)
    fig = Figure(figsize=(10, 5), layout="constrained")
    axs = fig.subplots(1, 2)
    axs[0].imshow(pred[ci, cj], interpolation="nearest", extent=crop_extent, **show)
    axs[0].set_title(f"network at the pixel grid ({nh} x {nw})")
    # the fine grid runs from the first to the last pixel centre of the crop
    fine_extent = (cj.start - 0.125, cj.stop - 0.875, ci.stop - 0.875, ci.start - 0.125)
    axs[1].imshow(fine, interpolation="nearest", extent=fine_extent, **show)
    axs[1].set_title(f"network rendered at 4x ({fine.shape[0]} x {fine.shape[1]})")
    for ax in axs:
        _pixel_axes(ax)
    fig.suptitle(heading)
    figures.append(("inpainting_render4x.png", fig, 100))
    return figures


def _pixel_axes(ax) -> None:
    ax.set_xlabel("column [pixel]")
    ax.set_ylabel("row [pixel]")


#: problem class -> its figure function (writes the files)
FIGURES = {HelmholtzPointSource: helmholtz_point_source_figures, Wave1D: wave1d_figures, Wave2D: wave2d_figures,
           Inpainting: inpainting_figures}
#: problem class -> the function that builds its figures unsaved
BUILDERS = {HelmholtzPointSource: _helmholtz_point_source, Wave1D: _wave1d, Wave2D: _wave2d,
            Inpainting: _inpainting}
