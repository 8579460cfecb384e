"""Classical image-inpainting reference solvers (NumPy/SciPy only, no torch).

These are the baselines a PINN inpainting run is compared against. An image is a
float array in [0, 1] of shape ``(H, W)`` (grey) or ``(H, W, C)`` (colour, every
channel solved independently); ``mask`` is a boolean array of shape ``(H, W)`` with
``True`` marking a *known* pixel (note: ``skimage.restoration.inpaint_biharmonic``
uses the opposite convention). Known pixels are Dirichlet data and are returned
unchanged, bit for bit, by every solver except ``inpaint_tv(..., lam=...)``.

All solvers use unit pixel spacing ``h = 1``: the equations are homogeneous, so the
solution does not depend on ``h``.

Solvers
-------
- :func:`inpaint_harmonic`   : ``Δu = 0`` on the missing pixels (5-point stencil).
- :func:`inpaint_biharmonic` : ``Δ²u = 0`` on the missing pixels (13-point stencil).
- :func:`inpaint_tv`         : ``min TV(u)`` subject to ``u = f`` on known pixels
  (Chambolle & Pock 2011, primal-dual).

The image metrics (PSNR / SSIM on the whole image and on the hole) are
:func:`pinn_sine.validation.metrics.psnr_ssim`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._sparse import sparse_lu

__all__ = ["inpaint_harmonic", "inpaint_biharmonic", "inpaint_tv"]

# The four 5-point-stencil neighbours as (row, column) offsets.
_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))


# ----------------------------------------------------------------------------- checks
def _check_image_mask(
    image: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(image, mask)``; return ``(u, mask)`` with ``u`` of shape (H, W, C).

    A grey image gets a trailing channel axis of length 1 so that every solver can
    treat the channels as extra right-hand sides of one factorised system.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image has shape {image.shape} (ndim={image.ndim}); expected (H, W) for a "
            "grey image or (H, W, C) for a colour image; squeeze or reshape it"
        )
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"image has dtype {image.dtype}; expected floats in [0, 1]; convert it "
            "with skimage.util.img_as_float(image)"
        )
    if mask.dtype != np.bool_:
        raise ValueError(
            f"mask has dtype {mask.dtype}; expected a boolean array with True = known "
            "pixel; pass mask.astype(bool) (and invert it if True meant 'missing')"
        )
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask shape {mask.shape} does not match image shape {image.shape} "
            f"(expected mask of shape image.shape[:2] = {image.shape[:2]}); build the "
            "mask on the same (H, W) grid as the image"
        )
    if not np.all(np.isfinite(image)):
        n_bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise ValueError(
            f"image contains {n_bad} non-finite value(s) (NaN or inf); expected a "
            "finite image; set unknown pixels to any finite value (e.g. 0) and mark "
            "them False in the mask"
        )
    n_known = int(np.count_nonzero(mask))
    if n_known == 0:
        raise ValueError(
            "mask has no known pixel (all False); expected at least one True (known) "
            "pixel to act as Dirichlet data; check the mask convention (True = known)"
        )
    if n_known == mask.size:
        raise ValueError(
            "mask has no missing pixel (all True); expected at least one False pixel "
            "to inpaint; nothing to do, use the image as is"
        )
    u = image.astype(np.float64, copy=True)
    if u.ndim == 2:
        u = u[:, :, None]
    return u, mask


def _restore_shape(u: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Drop the channel axis added by :func:`_check_image_mask` for grey images."""
    return u[:, :, 0] if np.ndim(image) == 2 else u


# --------------------------------------------------------------------- sparse assembly
def _laplacian_rows(shape: tuple[int, int], rows: np.ndarray) -> sp.csr_matrix:
    """Rows ``rows`` of the negative 5-point Laplacian ``L`` with reflecting borders.

    ``(L u)_p = deg(p) u_p - sum_{q ~ p} u_q`` where ``q ~ p`` runs over the in-image
    4-neighbours of ``p`` and ``deg(p)`` counts them. Dropping the neighbour that
    falls outside the image is the ghost-point reflection ``u_{-1} = u_0``
    (homogeneous Neumann at the border), and keeps ``L`` symmetric positive
    semi-definite with the constants as its null space.

    Args:
        shape: image shape ``(H, W)``.
        rows: flat (row-major) pixel indices, shape ``(m,)``.

    Returns:
        CSR matrix of shape ``(m, H*W)``.
    """
    H, W = shape
    i, j = np.divmod(rows, W)
    m = rows.size
    row_ids, col_ids, vals = [], [], []
    deg = np.zeros(m)
    for di, dj in _OFFSETS:  # four offsets, vectorised over all pixels
        ni, nj = i + di, j + dj
        inside = (ni >= 0) & (ni < H) & (nj >= 0) & (nj < W)
        deg += inside
        row_ids.append(np.flatnonzero(inside))
        col_ids.append(ni[inside] * W + nj[inside])
        vals.append(np.full(int(inside.sum()), -1.0))
    row_ids.append(np.arange(m))
    col_ids.append(rows)
    vals.append(deg)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(row_ids), np.concatenate(col_ids))),
        shape=(m, H * W),
    )


def _solve_dirichlet(
    A_full: sp.spmatrix, u: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Solve ``A_full[M, M] u_M = -A_full[M, K] u_K`` per channel and fill ``u``.

    Args:
        A_full: operator rows at the missing pixels, shape ``(m, H*W)``.
        u: image, shape ``(H, W, C)``; the missing pixels are overwritten.
        mask: known pixels, shape ``(H, W)``.
    """
    flat_mask = mask.ravel()
    missing = np.flatnonzero(~flat_mask)
    known = np.flatnonzero(flat_mask)
    A_full = sp.csc_matrix(A_full)
    A = A_full[:, missing]
    u_flat = u.reshape(-1, u.shape[2])
    rhs = -(A_full[:, known] @ u_flat[known])  # (m, C): every channel shares A
    lu = sparse_lu(A)
    u_flat[missing] = lu.solve(rhs)
    return u


# --------------------------------------------------------------------------- harmonic
def inpaint_harmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Harmonic inpainting: ``Δu = 0`` on the missing pixels, ``u = f`` on the known.

    Discretised with the 5-point stencil,
    ``4 u_{i,j} - u_{i-1,j} - u_{i+1,j} - u_{i,j-1} - u_{i,j+1} = 0`` at every missing
    pixel, with homogeneous Neumann (reflecting, ``u_{-1} = u_0``) conditions at the
    image border. Only the missing pixels are unknowns; the system is symmetric
    positive definite (every connected hole touches a known pixel) and is solved
    with a sparse LU factorisation shared by all channels. The stencil is exact for
    quadratic harmonic functions, so e.g. ``x² - y²`` is reproduced to round-off
    inside a hole that does not touch the border.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float array; values at missing pixels are
            ignored but must be finite.
        mask: ``(H, W)`` boolean, ``True`` = known pixel.

    Returns:
        Inpainted float64 array with the shape of ``image``; known pixels are
        copied unchanged.
    """
    u, mask = _check_image_mask(image, mask)
    missing = np.flatnonzero(~mask.ravel())
    L_missing = _laplacian_rows(mask.shape, missing)
    return _restore_shape(_solve_dirichlet(L_missing, u, mask), image)


# ------------------------------------------------------------------------- biharmonic
def inpaint_biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Biharmonic inpainting: ``Δ²u = 0`` on missing pixels, ``u = f`` on known ones.

    The discrete bilaplacian is ``L²`` with ``L`` the negative 5-point Laplacian of
    :func:`inpaint_harmonic` (reflecting borders). Away from the border ``L²`` is the
    13-point stencil (centre 20, edge neighbours -8, diagonals 2, distance-2 neighbours
    1). Because ``L`` is symmetric, ``(L² u)_M = 0`` is the optimality condition of
    ``min ||L u||²`` over ``u_M`` with ``u_K = f_K``, which fixes the border
    treatment without extra ghost-point rules and makes the system ``(L²)_{MM}``
    symmetric positive definite. ``L`` is only assembled on the band of missing
    pixels and their 4-neighbours, since ``(L²)_{M,:} = L_{band,M}^T L_{band,:}``.

    The 5-point stencil is exact for cubics, so a cubic polynomial is reproduced
    to round-off inside a hole whose pixels are at least 2 pixels from the border.
    The result is not clipped (``skimage.restoration.inpaint_biharmonic`` clips to
    the range of the known pixels): biharmonic fills can overshoot near sharp
    edges. Away from the border the two agree to round-off after clipping.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float array; values at missing pixels are
            ignored but must be finite.
        mask: ``(H, W)`` boolean, ``True`` = known pixel.

    Returns:
        Inpainted float64 array with the shape of ``image``; known pixels are
        copied unchanged.
    """
    u, mask = _check_image_mask(image, mask)
    H, W = mask.shape
    missing_2d = ~mask
    band_2d = missing_2d.copy()
    band_2d[1:, :] |= missing_2d[:-1, :]
    band_2d[:-1, :] |= missing_2d[1:, :]
    band_2d[:, 1:] |= missing_2d[:, :-1]
    band_2d[:, :-1] |= missing_2d[:, 1:]
    missing = np.flatnonzero(missing_2d.ravel())
    L_band = _laplacian_rows((H, W), np.flatnonzero(band_2d.ravel()))  # (b, H*W)
    L2_missing = sp.csr_matrix(L_band[:, missing].T @ L_band)  # (m, H*W)
    return _restore_shape(_solve_dirichlet(L2_missing, u, mask), image)


# --------------------------------------------------------------------------------- TV
def _grad(u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Forward differences with Neumann border: ``(H, W, C) -> (2, H, W, C)``.

    The difference across the last row/column is zero, the standard choice of
    Chambolle (2004) that makes ``||grad||² <= 8``. Written into ``out`` because
    the primal-dual loop calls it thousands of times on full-size images.
    """
    np.subtract(u[1:], u[:-1], out=out[0, :-1])
    out[0, -1] = 0.0
    np.subtract(u[:, 1:], u[:, :-1], out=out[1, :, :-1])
    out[1, :, -1] = 0.0
    return out


def _div(p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Discrete divergence ``(2, H, W, C) -> (H, W, C)``, the negative adjoint of
    :func:`_grad` (``<grad u, p> = -<u, div p>``), written into ``out``."""
    px, py = p[0], p[1]
    out[...] = 0.0
    out[:-1] += px[:-1]
    out[1:] -= px[:-1]
    out[:, :-1] += py[:, :-1]
    out[:, 1:] -= py[:, :-1]
    return out


def inpaint_tv(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    lam: float | None = None,
    max_iter: int = 2000,
    tol: float = 1e-5,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Total-variation inpainting with the Chambolle-Pock primal-dual algorithm.

    Solves ``min_u TV(u)`` subject to ``u = f`` on the known pixels (``lam=None``,
    the default), or ``min_u TV(u) + lam/2 sum_K (u - f)²`` (``lam > 0``, soft
    fidelity for noisy data), where ``TV(u) = sum_{ij} |grad u_{ij}|_2`` is the
    isotropic total variation with forward differences and Neumann border.
    Each channel is an independent problem (TV is not coupled across channels).

    Iteration (Chambolle & Pock 2011, Algorithm 1, theta = 1), with
    ``tau = sigma = 0.99/sqrt(8)`` so that ``tau sigma ||grad||² < 1``::

        p   <- proj_{|p|_2 <= 1}(p + sigma grad(u_bar))
        u+  <- prox_G(u + tau div p)     # G = indicator of {u_K = f_K} (projection)
        u_bar <- 2 u+ - u

    The missing pixels start at the mean of the known pixels of their channel. The
    iteration stops when ``||u^{k+1} - u^k|| / ||u^k|| < tol`` or after ``max_iter``
    iterations; reaching ``max_iter`` is reported through ``info["converged"]``,
    not by a warning.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float array; values at missing pixels are
            ignored but must be finite.
        mask: ``(H, W)`` boolean, ``True`` = known pixel.
        lam: ``None`` for the hard constraint, or a positive fidelity weight.
        max_iter: maximum number of iterations, ``>= 1``.
        tol: relative-change stopping tolerance, ``> 0``.
        return_info: also return a dict with ``"iterations"`` (int), ``"converged"``
            (bool) and ``"relative_change"`` (float, of the last iteration).

    Returns:
        Inpainted float64 array with the shape of ``image`` (known pixels copied
        unchanged when ``lam is None``), and the info dict if ``return_info``.
    """
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(
            f"max_iter={max_iter!r}; expected an integer >= 1; pass e.g. max_iter=2000"
        )
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(
            f"tol={tol!r}; expected a finite float > 0; pass e.g. tol=1e-5"
        )
    if lam is not None and not (np.isfinite(lam) and lam > 0):
        raise ValueError(
            f"lam={lam!r}; expected None (hard constraint on known pixels) or a finite "
            "float > 0 (fidelity weight); pass lam=None to keep known pixels exact"
        )
    f, mask = _check_image_mask(image, mask)
    known = mask[:, :, None]  # broadcast over channels

    tau = sigma = 0.99 / np.sqrt(8.0)
    # prox_G on the known pixels: the value f (projection) or the fidelity blend.
    g_known = f if lam is None else None

    u = f.copy()
    fill = np.array([f[:, :, c][mask].mean() for c in range(f.shape[2])])
    u[~mask] = fill
    u_bar = u.copy()
    u_new = np.empty_like(u)
    p = np.zeros((2,) + u.shape)
    grad_buf = np.empty_like(p)
    norm_buf = np.empty_like(u)
    sq_buf = np.empty_like(u)

    converged = False
    rel_change = np.inf
    k = 0
    for k in range(1, max_iter + 1):
        _grad(u_bar, grad_buf)
        grad_buf *= sigma
        p += grad_buf
        # Isotropic: project each pixel's 2-vector (per channel) onto the unit disc.
        np.square(p[0], out=norm_buf)
        norm_buf += np.square(p[1], out=sq_buf)
        np.sqrt(norm_buf, out=norm_buf)
        p /= np.maximum(norm_buf, 1.0, out=norm_buf)
        _div(p, u_new)
        u_new *= tau
        u_new += u
        if lam is not None:
            g_known = (u_new + tau * lam * f) / (1.0 + tau * lam)
        np.copyto(u_new, g_known, where=known)
        # u_bar = u_new + (u_new - u); the difference also gives the stopping test.
        np.subtract(u_new, u, out=u_bar)
        diff_norm = np.sqrt(np.vdot(u_bar, u_bar))
        # tiny floor: an all-zero image would otherwise divide by zero
        u_norm = max(np.sqrt(np.vdot(u, u)), np.finfo(float).tiny)
        rel_change = float(diff_norm / u_norm)
        u_bar += u_new
        u, u_new = u_new, u  # u_new's old buffer is overwritten next pass
        if rel_change < tol:
            converged = True
            break

    out = _restore_shape(u, image)
    if return_info:
        info = {"iterations": k, "converged": converged, "relative_change": rel_change}
        return out, info
    return out
