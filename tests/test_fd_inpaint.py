"""Tests for the classical inpainting reference solvers in validation/fd/inpaint.py."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.restoration import inpaint_biharmonic as skimage_inpaint_biharmonic

from pinn_sine.validation.fd.inpaint import (
    inpaint_biharmonic,
    inpaint_harmonic,
    inpaint_tv,
)
from pinn_sine.validation.metrics import psnr_ssim

SOLVERS = [inpaint_harmonic, inpaint_biharmonic, inpaint_tv]


def _camera_crop() -> np.ndarray:
    """96x96 textured crop of the bundled camera image (tripod and coat), in [0, 1]."""
    return data.camera()[100:196, 200:296].astype(np.float64) / 255.0


def _random_mask(shape: tuple[int, int], missing: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) >= missing


def _block_mask(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.ones(shape, dtype=bool)
    mask[rows, cols] = False
    return mask


def _grid(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres with one spacing h in both directions (stencils assume hx = hy)."""
    h = 1.0 / max(H, W)
    return np.meshgrid(h * np.arange(H), h * np.arange(W), indexing="ij")


def _tv(u: np.ndarray) -> float:
    """Isotropic TV with forward differences, written independently of the solver."""
    gx = np.diff(u, axis=0, append=u[-1:])
    gy = np.diff(u, axis=1, append=u[:, -1:])
    return float(np.sqrt(gx**2 + gy**2).sum())


# ---------------------------------------------------------------- exact reproduction
def test_harmonic_reproduces_quadratic_harmonic():
    # x² - y² is harmonic and the 5-point stencil is exact for quadratics, so the
    # discrete solution equals it when the hole does not touch the (Neumann) border.
    x, y = _grid(40, 48)
    u_true = x**2 - y**2 + 0.3 * x - 0.2 * y
    mask = _block_mask(u_true.shape, slice(8, 30), slice(10, 37))
    u = inpaint_harmonic(u_true * mask, mask)  # hole values zeroed: must not matter
    assert np.max(np.abs(u - u_true)) < 1e-10
    assert np.array_equal(u[mask], u_true[mask])


def test_biharmonic_reproduces_cubic():
    # Δ² of a cubic is 0 and the 13-point stencil (L² of the 5-point one) is exact
    # for cubics when every hole pixel is >= 2 pixels from the border.
    x, y = _grid(48, 56)
    u_true = x**3 - 2 * x**2 * y + x * y**2 + 0.5 * y**3 + x - y
    mask = _block_mask(u_true.shape, slice(2, 30), slice(12, 54))
    u = inpaint_biharmonic(u_true * mask, mask)
    assert np.max(np.abs(u - u_true)) < 1e-8
    assert np.array_equal(u[mask], u_true[mask])


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: s.__name__)
def test_constant_reproduced_with_border_holes(solver):
    # Constants satisfy every equation and the Neumann border, even for holes that
    # touch the border.
    u_true = np.full((24, 20), 0.37)
    mask = _random_mask(u_true.shape, 0.6, seed=3)
    mask[:, :3] = False
    u = solver(u_true, mask)
    assert np.max(np.abs(u - u_true)) < 1e-10


# ----------------------------------------------------------------------- skimage
@pytest.mark.parametrize("kind", ["random", "block"])
def test_biharmonic_matches_skimage(kind):
    truth = _camera_crop()
    if kind == "random":
        mask = _random_mask(truth.shape, 0.5)
    else:
        mask = _block_mask(truth.shape, slice(30, 50), slice(40, 60))
    ours = inpaint_biharmonic(truth, mask)
    theirs = skimage_inpaint_biharmonic(truth, ~mask)  # skimage: True = to inpaint
    # skimage clips to the range of the known pixels; we do not.
    known = truth[mask]
    ours_clipped = np.clip(ours, known.min(), known.max())
    # Measured (camera[100:196, 200:296], seed 0): both use the 13-point stencil
    # away from the border, so they agree to round-off there (block: 3e-14 max over
    # the whole image). They differ only in the border rows (skimage truncates the
    # stencil, we use L² with reflecting L), which reaches <= 5 pixels inward
    # through the random mask's small holes: mean |diff| over missing pixels 8e-6,
    # max 7.6e-3 (3.9e-3 after clipping, 5 pixels from the border), 2e-15 beyond 6
    # pixels; psnr_region 27.7694 vs 27.7696 dB.
    interior = np.zeros_like(mask)
    interior[8:-8, 8:-8] = True
    assert np.max(np.abs(ours_clipped - theirs)[interior]) < 1e-10
    assert np.mean(np.abs(ours - theirs)[~mask]) < 1e-4
    m_ours = psnr_ssim(ours, truth, ~mask)
    m_theirs = psnr_ssim(theirs, truth, ~mask)
    assert abs(m_ours["psnr_region"] - m_theirs["psnr_region"]) < 0.01
    assert abs(m_ours["ssim_region"] - m_theirs["ssim_region"]) < 1e-3


# ----------------------------------------------------------------------------- TV
def test_tv_fills_step_across_strip():
    # Horizontal edge (0 above row 16, 1 below) with a missing vertical strip: the
    # shortest level line joining the edge on both sides is the straight segment,
    # so the minimiser continues the step, with TV = W (one unit jump per column).
    H, W = 32, 40
    truth = np.zeros((H, W))
    truth[16:] = 1.0
    mask = _block_mask(truth.shape, slice(None), slice(16, 24))
    u0 = np.where(mask, truth, truth[mask].mean())  # the solver's initial guess
    u, info = inpaint_tv(truth, mask, return_info=True)
    assert info["converged"] is True
    assert info["iterations"] < 2000
    assert info["relative_change"] < 1e-5
    assert np.array_equal(u[mask], truth[mask])
    assert _tv(u) < _tv(u0)
    # Chambolle-Pock converges slowly (O(1/k)): measured at tol=1e-5, 721
    # iterations, max error 1.3e-2 (at the edge), TV - W = 0.066; at tol=1e-7,
    # 3463 iterations, max error 5.8e-3, TV - W = 4e-4.
    assert np.max(np.abs(u - truth)) < 3e-2
    assert _tv(u) == pytest.approx(W, rel=3e-3)
    u_tight, info_tight = inpaint_tv(truth, mask, tol=1e-7, max_iter=10_000,
                                     return_info=True)
    assert info_tight["converged"] is True
    assert np.max(np.abs(u_tight - truth)) < 1e-2
    assert _tv(u_tight) == pytest.approx(W, rel=3e-5)


def test_tv_reports_non_convergence():
    truth = _camera_crop()
    mask = _random_mask(truth.shape, 0.5)
    u, info = inpaint_tv(truth, mask, max_iter=3, return_info=True)
    assert info == {
        "iterations": 3,
        "converged": False,
        "relative_change": info["relative_change"],
    }
    assert info["relative_change"] > 1e-5
    assert np.array_equal(u[mask], truth[mask])


def test_tv_soft_fidelity_close_to_data():
    truth = _camera_crop()
    mask = _random_mask(truth.shape, 0.5)
    u = inpaint_tv(truth, mask, lam=1e3)
    assert np.max(np.abs(u[mask] - truth[mask])) < 1e-2
    assert not np.array_equal(u[mask], truth[mask])


# ------------------------------------------------------------------ camera quality
def test_camera_50_percent_missing_quality():
    truth = _camera_crop()
    mask = _random_mask(truth.shape, 0.5)
    mean_fill = np.where(mask, truth, truth[mask].mean())
    baseline = psnr_ssim(mean_fill, truth, ~mask)
    # Measured psnr_region / ssim_region: mean fill 11.07 dB / 0.30, harmonic
    # 26.40 / 0.944, biharmonic 27.77 / 0.955, TV 26.43 / 0.943 (896 iterations).
    for solver in SOLVERS:
        metrics = psnr_ssim(solver(truth, mask), truth, ~mask)
        margin = metrics["psnr_region"] - baseline["psnr_region"]
        assert margin > 12.0, solver.__name__
        assert metrics["ssim_region"] > 0.9, solver.__name__
        assert metrics["psnr"] > metrics["psnr_region"]  # known pixels are exact


# ------------------------------------------------------------------------- colour
@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: s.__name__)
def test_colour_solved_per_channel(solver):
    grey = _camera_crop()[:48, :48]
    colour = np.stack([grey, 1.0 - grey, grey**2], axis=-1)
    mask = _random_mask(grey.shape, 0.5, seed=1)
    # Fixed iteration count so TV runs the same iterations on every channel.
    kwargs = {"max_iter": 40, "tol": 1e-14} if solver is inpaint_tv else {}
    u = solver(colour, mask, **kwargs)
    assert u.shape == colour.shape
    for c in range(3):
        np.testing.assert_allclose(u[..., c], solver(colour[..., c], mask, **kwargs),
                                   rtol=0, atol=1e-12)
    metrics = psnr_ssim(u, colour, ~mask)
    assert set(metrics) == {"psnr", "ssim", "psnr_region", "ssim_region"}


# ------------------------------------------------------------------------ metrics
def test_psnr_ssim_values():
    truth = 0.8 * _camera_crop()  # in [0, 0.8]: truth + 0.1 is not clipped at 1
    region = ~_random_mask(truth.shape, 0.5)
    assert psnr_ssim(truth, truth) == {"psnr": np.inf, "ssim": 1.0}
    estimate = truth.copy()
    estimate[region] += 0.1
    metrics = psnr_ssim(estimate, truth, region)
    assert metrics["psnr_region"] == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert metrics["psnr"] > metrics["psnr_region"]
    assert metrics["ssim_region"] < metrics["ssim"] < 1.0
    # the estimate is clipped to [0, data_range], as the image would be shown
    assert psnr_ssim(truth + 2.0, truth)["psnr"] == psnr_ssim(np.ones_like(truth), truth)["psnr"]


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: s.__name__)
def test_input_errors(solver):
    image = np.full((8, 10), 0.5)
    mask = np.ones((8, 10), dtype=bool)
    mask[3, 4] = False
    shapes = r"mask shape \(10, 8\) does not match image shape \(8, 10\)"
    with pytest.raises(ValueError, match=shapes):
        solver(image, mask.T)
    with pytest.raises(ValueError, match="no known pixel"):
        solver(image, np.zeros_like(mask))
    with pytest.raises(ValueError, match="no missing pixel"):
        solver(image, np.ones_like(mask))
    bad = image.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        solver(bad, mask)
    with pytest.raises(ValueError, match="dtype uint8"):
        solver((image * 255).astype(np.uint8), mask)
    with pytest.raises(ValueError, match="mask has dtype int64"):
        solver(image, mask.astype(np.int64))
    with pytest.raises(ValueError, match="expected \\(H, W\\)"):
        solver(image[None, None], mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tol": 0.0}, "tol=0.0"),
        ({"tol": -1e-3}, "tol=-0.001"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"max_iter": 2.5}, "max_iter=2.5"),
        ({"lam": -1.0}, "lam=-1.0"),
    ],
)
def test_tv_option_errors(kwargs, match):
    image = np.full((8, 10), 0.5)
    mask = np.ones((8, 10), dtype=bool)
    mask[3, 4] = False
    with pytest.raises(ValueError, match=match):
        inpaint_tv(image, mask, **kwargs)


def test_psnr_ssim_errors():
    truth = _camera_crop()
    with pytest.raises(ValueError, match="pred has shape .* ref has shape"):
        psnr_ssim(truth[:-1], truth)
    with pytest.raises(ValueError, match="mask is empty"):
        psnr_ssim(truth, truth, np.zeros(truth.shape, dtype=bool))
    with pytest.raises(ValueError, match="mask has dtype"):
        psnr_ssim(truth, truth, np.ones((3, 3), dtype=bool))
