"""Error metrics between a prediction and a reference."""
from __future__ import annotations

import numpy as np


def rel_l2(pred, ref, mask=None) -> float:
    """||pred - ref||_2 / ||ref||_2 over all entries (or over ``mask`` of the grid shape)."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"pred has shape {pred.shape}, ref has shape {ref.shape}; they must match.")
    if mask is not None:
        pred, ref = pred[mask], ref[mask]
    denom = np.linalg.norm(ref.ravel())
    if denom == 0:
        raise ValueError("the reference is identically zero on the region: relative L2 is undefined.")
    return float(np.linalg.norm((pred - ref).ravel()) / denom)


def max_abs(pred, ref, mask=None) -> float:
    """max |pred - ref| over all entries (or over ``mask``)."""
    d = np.abs(np.asarray(pred) - np.asarray(ref))
    if mask is not None:
        d = d[mask]
    return float(d.max())


def psnr_ssim(pred, ref, mask=None, data_range: float = 1.0) -> dict[str, float]:
    """PSNR and SSIM of an image ``pred`` against ``ref`` (``skimage.metrics``), on the
    whole image and, with ``mask``, over the masked pixels.

    ``pred`` is clipped to [0, data_range] first, as the image would be shown.
    PSNR = 10 log10(data_range^2 / MSE) (inf for identical images); SSIM uses
    skimage's default 7 x 7 window (``channel_axis=-1`` for colour). Over ``mask``
    (usually the missing pixels) PSNR takes the region's pixels (all channels) and SSIM
    is the mean of the full SSIM map there (windows still see the neighbours).

    Args:
        pred, ref: (H, W) or (H, W, C) float arrays of one shape.
        mask: optional (H, W) boolean array with at least one True pixel.
        data_range: the images' value range (1 for [0, 1]).
    Returns:
        {"psnr", "ssim"}, plus {"psnr_region", "ssim_region"} with ``mask``; floats.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"pred has shape {pred.shape}, ref has shape {ref.shape}; compare images on the same grid.")
    if ref.ndim not in (2, 3):
        raise ValueError(f"images have shape {ref.shape}; expected (H, W) or (H, W, C).")
    pred = np.clip(pred, 0.0, data_range)
    channel_axis = -1 if ref.ndim == 3 else None
    with np.errstate(divide="ignore"):  # identical images: PSNR = inf, no warning
        out = {"psnr": float(peak_signal_noise_ratio(ref, pred, data_range=data_range))}
    ssim, smap = structural_similarity(ref, pred, data_range=data_range, channel_axis=channel_axis, full=True)
    out["ssim"] = float(ssim)
    if mask is None:
        return out
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != ref.shape[:2]:
        raise ValueError(f"mask has dtype {mask.dtype} and shape {mask.shape}; expected a boolean array of shape "
                         f"{ref.shape[:2]}, e.g. ~known.")
    if not mask.any():
        raise ValueError("mask is empty (all False); give at least one True pixel, or mask=None for whole-image "
                         "metrics only.")
    mse = float(np.mean((pred[mask] - ref[mask]) ** 2))
    out["psnr_region"] = float(10 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")
    out["ssim_region"] = float(np.mean(smap[mask]))
    return out
