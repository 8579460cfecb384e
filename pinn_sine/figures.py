"""The problems' own figures, one function per problem (beside :mod:`pinn_sine.plots`,
the generic ones). :func:`problem_figures` picks the problem's function; a problem
without one gets None, and its callers draw :func:`~pinn_sine.plots.field_comparison`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from .problems import HelmholtzPointSource, Inpainting, Wave1D, Wave2D
from .validation.reference import ReferenceField


def problem_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *, activation: str | None = None,
                    **options) -> list[Path] | None:
    """Write ``problem``'s own figures of ``net`` against ``ref`` to ``out_dir`` and return
    their paths; None for a problem without figures of its own. Every figure is titled
    with the problem, ``activation`` (the label of the net; None: its config's
    activation name) and the error. ``options`` go to the problem's function
    (Inpainting: ``method``, the FD inpainting shown beside the net)."""
    for cls, draw in FIGURES.items():
        if isinstance(problem, cls):
            return draw(problem, net, ref, out_dir, activation=activation, **options)
    return None


def net_label(net: nn.Module, activation: str | None = None) -> str:
    """``activation``, else the activation name in the net's config, else its class name."""
    if activation:
        return activation
    return str(getattr(net, "config", {}).get("activation") or type(net).__name__)


def _heading(problem, net, activation, errors: dict) -> str:
    return f"{problem.name} / {net_label(net, activation)}: rel L2 {errors['rel_l2']:.2e}"


def _save(fig, out_dir, name: str, dpi: int) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=dpi)
    return path


def _error_vs_time(problem, net, activation, ref: ReferenceField, errors: dict, out_dir) -> Path:
    from .plots import error_vs_time

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return error_vs_time(ref.coords["t"], errors["rel_l2_per_t"], out_dir / f"{problem.name}_error_t.png",
                         title=_heading(problem, net, activation, errors))


def helmholtz_point_source_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                                   activation: str | None = None) -> list[Path]:
    """Real part, imaginary part and magnitude (columns) of the prediction, the FD
    reference and the error (rows), with the physical region outlined, written to
    ``out_dir/<name>_fields.png``; the velocity model to ``out_dir/<name>_velocity.png``.
    Returns the paths written."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .validation.evaluate import evaluate

    pred = problem.predict(net, ref)
    errors = evaluate(net, ref, prediction=pred)
    p = pred["u_real"] + 1j * pred["u_imag"]
    r = ref.fields["u_real"] + 1j * ref.fields["u_imag"]
    x, y = ref.coords["x"], ref.coords["y"]
    extent = (x[0], x[-1], y[0], y[-1])
    mask = ref.mask if ref.mask is not None else np.ones(r.shape, bool)
    vmax = float(np.abs(r[mask]).max())
    parts = (("real", np.real), ("imaginary", np.imag), ("magnitude", np.abs))
    (px0, px1), (py0, py1) = problem.physical
    fig = Figure(figsize=(12.5, 11), layout="constrained")
    axes = fig.subplots(3, 3)
    for j, (label, part) in enumerate(parts):
        lo = 0.0 if label == "magnitude" else -vmax
        err = np.abs(part(p) - part(r))
        emax = float(err[mask].max()) or 1.0
        rows = (("prediction", part(p), "RdBu_r" if lo < 0 else "viridis", lo, vmax),
                ("reference (FD)", part(r), "RdBu_r" if lo < 0 else "viridis", lo, vmax),
                ("|error|", err, "magma", 0.0, emax))
        for i, (title, data, cmap, vmin, vmax_) in enumerate(rows):
            ax = axes[i, j]
            im = ax.imshow(data.T, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax_)
            ax.add_patch(Rectangle((px0, py0), px1 - px0, py1 - py0, fill=False, ls="--", lw=0.8, ec="k"))
            ax.set_title(f"{title}: {label}")
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            part_name = {"real": "Re u", "imaginary": "Im u", "magnitude": "|u|"}[label]
            fig.colorbar(im, ax=ax, shrink=0.85, label=f"|error of {part_name}|" if i == 2 else part_name)
    fig.suptitle(f"{_heading(problem, net, activation, errors)} (|u|: {errors['rel_l2_abs']:.2e}); "
                 "dashed: the physical region")
    fields_path = _save(fig, out_dir, f"{problem.name}_fields.png", 100)

    X, Y = np.meshgrid(x, y, indexing="ij")
    c = problem.speed_model.on_grid(X, Y)
    fig = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.asarray(c).T, origin="lower", extent=extent, cmap="cividis")
    ax.add_patch(Rectangle((px0, py0), px1 - px0, py1 - py0, fill=False, ls="--", lw=0.8, ec="w"))
    ax.plot(*problem.center, "r*", ms=10)
    ax.set_title(f"{problem.name}: velocity c(x, y), omega = {problem.omega:g}\n"
                 f"(* source; {net_label(net, activation)} rel L2 {errors['rel_l2']:.2e})", fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.colorbar(im, ax=ax, label="c")
    velocity_path = _save(fig, out_dir, f"{problem.name}_velocity.png", 100)
    return [fields_path, velocity_path]


def wave1d_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                   activation: str | None = None) -> list[Path]:
    """The x-t images of prediction, reference and |error| side by side, written to
    ``out_dir/wave1d_xt.png``, and the error of each time slice against t,
    ``out_dir/wave1d_error_t.png``; returns the paths written."""
    from matplotlib.figure import Figure

    from .validation.evaluate import evaluate, predict

    pred = predict(net, ref)["u"]
    errors = evaluate(net, ref, prediction={"u": pred})
    u = ref.fields["u"]
    t, x = ref.coords["t"], ref.coords["x"]
    extent = (t[0], t[-1], x[0], x[-1])
    vmax = float(np.max(np.abs(u)))
    fig = Figure(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("prediction", pred, "RdBu_r", -vmax, vmax, "u"), ("reference (FD)", u, "RdBu_r", -vmax, vmax, "u"),
              ("|error|", np.abs(pred - u), "magma", 0.0, None, "|u error|"))
    for ax, (title, data, cmap, lo, hi, what) in zip(axes, panels):
        im = ax.imshow(data.T, origin="lower", extent=extent, aspect="auto", cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title)
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        fig.colorbar(im, ax=ax, label=what)
    fig.suptitle(_heading(problem, net, activation, errors))
    return [_save(fig, out_dir, f"{problem.name}_xt.png", 120),
            _error_vs_time(problem, net, activation, ref, errors, out_dir)]


def wave2d_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                   activation: str | None = None) -> list[Path]:
    """A strip of snapshots at the reference times: rows prediction, reference and
    |error|, one column per time with its own colour scales (the wave spreads and
    fades, so one scale would hide the late times) and its relative L2 error, written
    to ``out_dir/wave2d_snapshots.png``; the error at each snapshot time against t to
    ``out_dir/wave2d_error_t.png``. Returns the paths written."""
    from matplotlib.figure import Figure

    from .validation.evaluate import evaluate, predict

    pred = predict(net, ref)["u"]
    errors = evaluate(net, ref, prediction={"u": pred})
    u = ref.fields["u"]
    t, x, y = ref.coords["t"], ref.coords["x"], ref.coords["y"]
    extent = (x[0], x[-1], y[0], y[-1])
    err = np.abs(pred - u)
    nt = len(t)
    fig = Figure(figsize=(3.3 * nt + 0.6, 8.8), layout="constrained")
    axes = fig.subplots(3, nt, squeeze=False)
    for k in range(nt):
        vmax = float(np.max(np.abs(u[k]))) or 1.0
        emax = float(err[k].max()) or 1.0
        rows = (("prediction", pred[k], "RdBu_r", -vmax, vmax, "u"),
                ("reference (FD)", u[k], "RdBu_r", -vmax, vmax, "u"),
                ("|error|", err[k], "magma", 0.0, emax, "|u error|"))
        for i, (label, data, cmap, lo, hi, what) in enumerate(rows):
            ax = axes[i, k]
            im = ax.imshow(data.T, origin="lower", extent=extent, cmap=cmap, vmin=lo, vmax=hi)
            if i == 0:
                e = errors["rel_l2_per_t"][k]
                ax.set_title(f"t = {t[k]:.3g}\nrel L2 {e:.2e}" if np.isfinite(e) else f"t = {t[k]:.3g}\n(u = 0)")
            ax.set_xlabel("x" if i == 2 else "")
            if i < 2:
                ax.tick_params(labelbottom=False)
            ax.set_ylabel(f"{label}\ny" if k == 0 else "")
            if k:
                ax.tick_params(labelleft=False)
            fig.colorbar(im, ax=ax, shrink=0.8, label=what)
    fig.suptitle(_heading(problem, net, activation, errors) + " (colour scales per time)")
    return [_save(fig, out_dir, f"{problem.name}_snapshots.png", 110),
            _error_vs_time(problem, net, activation, ref, errors, out_dir)]


def inpainting_figures(problem, net: nn.Module, ref: ReferenceField, out_dir, *,
                       method: str = "biharmonic", activation: str | None = None) -> list[Path]:
    """Write inpainting.png (ground truth, masked input, network, FD ``method``, the
    two error maps), inpainting_zoom.png (a central crop of each, at pixel
    resolution) and inpainting_render4x.png (the crop rendered by the net at 4x
    resolution beside the pixels it was fitted to). Returns the paths."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = ref.fields["u"]
    pred = np.clip(problem.render(net), 0.0, 1.0)
    fd_img = np.clip(problem.classical(method).fields["u"], 0.0, 1.0)
    from .validation.evaluate import evaluate

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
    emax = float(max(err_net.max(), err_fd.max(), 1e-12))
    show = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grey else {}
    paths = []

    fig = Figure(figsize=(15, 8.6), layout="constrained")
    axs = fig.subplots(2, 3)
    known = f"input ({100 * problem.known_fraction:.0f}% known, missing in red)"
    panels = [(truth, "ground truth", show), (masked, known, show),
              (pred, f"network ({name})\n{scores(m_net)}", show), (fd_img, f"FD {method}\n{scores(m_fd)}", show),
              (err_net, "|network - truth|", {"cmap": "magma", "vmin": 0.0, "vmax": emax}),
              (err_fd, f"|FD {method} - truth|", {"cmap": "magma", "vmin": 0.0, "vmax": emax})]
    for ax, (img, title, kw) in zip(axs.ravel(), panels):
        im = ax.imshow(img, **kw)
        ax.set_title(title, fontsize=10)
        _pixel_axes(ax)
        if "magma" in kw.values():
            fig.colorbar(im, ax=ax, shrink=0.8, label="|error| (intensity, 0..1)")
        elif grey:
            fig.colorbar(im, ax=ax, shrink=0.8, label="intensity")
    heading = (f"{problem.name} / {name}: PSNR {m_net['psnr']:.1f} dB, SSIM {m_net['ssim']:.3f} "
               f"(FD {method}: {m_fd['psnr']:.1f} dB, {m_fd['ssim']:.3f})")
    fig.suptitle(heading)
    paths.append(out_dir / "inpainting.png")
    fig.savefig(paths[-1], dpi=100)

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
    paths.append(out_dir / "inpainting_zoom.png")
    fig.savefig(paths[-1], dpi=100)

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
    paths.append(out_dir / "inpainting_render4x.png")
    fig.savefig(paths[-1], dpi=100)
    return paths


def _pixel_axes(ax) -> None:
    ax.set_xlabel("column [pixel]")
    ax.set_ylabel("row [pixel]")


#: problem class -> its figure function
FIGURES = {HelmholtzPointSource: helmholtz_point_source_figures, Wave1D: wave1d_figures, Wave2D: wave2d_figures,
           Inpainting: inpainting_figures}
