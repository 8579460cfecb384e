"""What the figures show: log-scale error panels that say what they are measured
against, colormaps that follow the field's sign, loss figures without empty or flat
panels, and titles that lead with the error against the exact solution."""
import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm

from pinn_sine.figures import _problem_figures
from pinn_sine.nets import MLP, Sine
from pinn_sine.plots import _error_vs_time_figure, _field_comparison_figure, _loss_figure, error_norm, field_style
from pinn_sine.problems import Poisson2D, Wave1D, Wave2D
from pinn_sine.validation import evaluate
from pinn_sine.validation.reference import ReferenceField


def _grid_ref(u: np.ndarray) -> ReferenceField:
    n = u.shape[0]
    x = np.linspace(-1.0, 1.0, n)
    return ReferenceField(problem="synthetic", params={}, coords={"x": x, "y": x}, fields={"u": u}, solver="fd",
                          order=2, spacing={"x": x[1] - x[0], "y": x[1] - x[0]})


def _bump(n=17, shift=0.0):
    x = np.linspace(-1.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return np.cos(0.5 * math.pi * X) * np.cos(0.5 * math.pi * Y) + shift


def _image(ax):
    assert len(ax.images) == 1
    return ax.images[0]


def _error_axes(fig):
    """The axes of the network's |error| panel (the first error-coloured image)."""
    return next(ax for ax in fig.axes if ax.images and ax.images[0].cmap.name == "magma")


# ----- field comparison ---------------------------------------------------------------------
def test_error_panel_against_exact_is_logarithmic_and_says_exact():
    problem = Poisson2D()
    ref = problem.reference(resolution=17)
    pred = {"u": ref.fields["u"] * 1.01 + 1e-4}
    fig = _field_comparison_figure(pred, ref, exact=problem.exact_solution)
    ax = _error_axes(fig)
    im = _image(ax)
    assert isinstance(im.norm, LogNorm)
    assert im.norm.vmin == pytest.approx(im.norm.vmax * 1e-4)
    assert "exact" in im.colorbar.ax.get_ylabel()
    assert "u_exact" in ax.get_title()
    # the fourth panel: the FD reference's own error against the exact solution, also log scale
    titles = [a.get_title() for a in fig.axes]
    assert any(t.startswith("FD reference: |u_ref - u_exact|") for t in titles)
    assert sum(isinstance(a.images[0].norm, LogNorm) for a in fig.axes if a.images) == 2


def test_error_panel_without_exact_says_reference():
    ref = _grid_ref(_bump())
    fig = _field_comparison_figure({"u": ref.fields["u"] + 1e-3 * _bump(shift=-0.5)}, ref)
    im = _image(_error_axes(fig))
    assert isinstance(im.norm, LogNorm)
    label = im.colorbar.ax.get_ylabel()
    assert "reference" in label and "exact" not in label
    assert len([a for a in fig.axes if a.images]) == 3  # prediction, reference, error


def test_error_norm_floor_and_an_exact_match():
    norm = error_norm(np.array([0.0, 1e-9, 2e-2]))
    assert (norm.vmin, norm.vmax) == pytest.approx((2e-6, 2e-2))
    norm = error_norm(np.zeros(4))  # identical fields: a valid, empty-looking scale
    assert 0 < norm.vmin < norm.vmax


def test_a_positive_field_is_sequential_and_a_signed_one_diverging_about_zero():
    positive = _grid_ref(_bump() + 0.1)
    fig = _field_comparison_figure({"u": positive.fields["u"]}, positive)
    for ax in fig.axes[:2]:
        assert _image(ax).cmap.name == "viridis"
    signed = _grid_ref(_bump() - 0.3)
    fig = _field_comparison_figure({"u": signed.fields["u"]}, signed)
    for ax in fig.axes[:2]:
        im = _image(ax)
        assert im.cmap.name == "RdBu_r"
        assert im.norm.vmin == pytest.approx(-im.norm.vmax)
    # rounding noise of the other sign does not make a field signed
    assert field_style(np.array([-1e-12, 0.5, 1.0]))[0] == "viridis"
    assert field_style(np.array([-0.2, 0.5, 1.0]))[0] == "RdBu_r"


# ----- loss curves ------------------------------------------------------------------------
def _history(weights="fixed"):
    rows = []
    for step in range(1, 41):
        phase = "adam" if step <= 20 else ("lbfgs" if step <= 25 else "gauss_newton")
        row = {"step": step, "phase": phase, "loss": 1.0 / step, "pde": 0.8 / step, "boundary": 0.2 / step,
               "time": 0.01 * step + (0.2 * (step - 25) if step > 25 else 0.0)}
        row["w_pde"] = 1.0 if weights == "fixed" else 1.0 + 0.05 * step
        row["w_boundary"] = 10.0 if weights == "fixed" else 1.0
        if step % 10 == 0 or phase == "gauss_newton":  # every Gauss-Newton step evaluated
            row["rel_l2"] = 0.5 / step
            row["rel_l2_exact"] = 0.4 / step
        rows.append(row)
    return rows


def _titles(fig):
    return [ax.get_title(loc="left") for ax in fig.axes]


def test_loss_figure_drops_constant_weights_and_keeps_varying_ones():
    fig = _loss_figure(_history("fixed"))
    assert not any("weights" in t for t in _titles(fig))
    # a fixed weight other than 1 is named in the loss legend instead
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "boundary (weight 10)" in labels and "pde" in labels
    fig = _loss_figure(_history("gradnorm"))
    assert any("term weights" in t for t in _titles(fig))


@pytest.mark.parametrize("weights", ["fixed", "gradnorm"])
@pytest.mark.parametrize("x", ["step", "time"])
def test_loss_figure_has_no_empty_axes_and_stage_labels_inside(weights, x):
    fig = _loss_figure(_history(weights), x=x, title="t")
    for ax in fig.axes:
        if ax.get_visible():
            assert ax.lines or ax.images or ax.collections or ax.patches, ax.get_title(loc="left")
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig.axes[0]
    names = [t.get_text() for t in top.texts]
    assert names == ["adam", "lbfgs", "gauss_newton"]
    box = top.get_window_extent(renderer)
    for text in top.texts:
        ext = text.get_window_extent(renderer)
        assert box.x0 <= ext.x0 and ext.x1 <= box.x1 and box.y0 <= ext.y0 and ext.y1 <= box.y1, text.get_text()
    extents = [t.get_window_extent(renderer) for t in top.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(extents) for b in extents[i + 1:])


def test_loss_figure_plots_every_evaluated_row_against_exact_and_reference():
    history = _history()
    fig = _loss_figure(history, reference_error=1e-3)
    ax = next(a for a in fig.axes if a.get_title(loc="left").startswith("relative L2 error"))
    lines = {line.get_label(): line for line in ax.lines}
    assert {"vs exact", "vs FD reference"} <= set(lines)
    evaluated = [h["step"] for h in history if "rel_l2" in h]
    for label in ("vs exact", "vs FD reference"):
        assert list(lines[label].get_xdata()) == evaluated
        assert lines[label].get_marker() not in ("", "None", None)
    assert "FD reference's own error" in lines


def test_loss_figure_without_evaluations_has_no_error_panel():
    history = [{k: v for k, v in h.items() if not k.startswith("rel_l2")} for h in _history()]
    fig = _loss_figure(history)
    assert [a for a in fig.axes if a.get_title(loc="left").startswith("relative")] == []
    assert len(fig.axes) == 1


def test_error_vs_time_labels_both_targets():
    fig = _error_vs_time_figure(np.linspace(0, 1, 5), [0.1, 0.2, float("nan"), 0.3, 0.4],
                                rel_l2_exact_per_t=[0.05, 0.1, float("nan"), 0.2, 0.3])
    assert {line.get_label() for line in fig.axes[0].lines} == {"vs exact", "vs FD reference"}


# ----- titles -----------------------------------------------------------------------------
def test_problem_figure_titles_carry_the_exact_error_where_there_is_one():
    problem = Wave1D(time_resolution=9)
    ref = problem.reference(resolution=9)
    net = MLP(2, 1, 8, 1, activation=Sine(), first_omega=5.0, seed=0)
    errors = evaluate(net, ref, exact=problem.exact_solution)
    figures = _problem_figures(problem, net, ref, activation="siren")
    assert [name for name, _, _ in figures] == ["wave1d_xt.png", "wave1d_error_t.png"]
    for _, fig, _ in figures:  # the exact solution's error first, the reference's beside it
        assert f"rel L2 {errors['rel_l2_exact']:.2e} vs exact ({errors['rel_l2']:.2e} vs reference)" \
            in fig.get_suptitle()
    err_ax = _error_axes(figures[0][1])
    assert "exact" in err_ax.images[0].colorbar.ax.get_ylabel()

    problem = Wave2D(snapshot_times=[0.0, 0.2], fd_refine=1)
    ref = problem.reference(resolution=17)
    net = MLP(3, 1, 8, 1, activation=Sine(), first_omega=5.0, seed=0)
    figures = _problem_figures(problem, net, ref)
    title = figures[0][1].get_suptitle()
    assert "vs reference" in title and "exact" not in title
    snapshots = figures[0][1]
    errors_row = [ax for ax in snapshots.axes if ax.images and ax.images[0].cmap.name == "magma"]
    assert len(errors_row) == 2 and all(isinstance(ax.images[0].norm, LogNorm) for ax in errors_row)
    assert errors_row[0].images[0].norm is errors_row[1].images[0].norm  # one |error| scale for all times
