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
    """PSNR and SSIM through ``skimage.metrics`` on the whole image and, with ``mask``,
    over the masked pixels (PSNR on those pixels, SSIM as the mean of the SSIM map there)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred = np.clip(np.asarray(pred, dtype=np.float64), 0.0, data_range)
    ref = np.asarray(ref, dtype=np.float64)
    channel_axis = -1 if ref.ndim == 3 else None
    out = {"psnr": float(peak_signal_noise_ratio(ref, pred, data_range=data_range))}
    ssim, smap = structural_similarity(ref, pred, data_range=data_range, channel_axis=channel_axis, full=True)
    out["ssim"] = float(ssim)
    if mask is not None:
        mse = float(np.mean((pred[mask] - ref[mask]) ** 2))
        out["psnr_region"] = float(10 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")
        out["ssim_region"] = float(np.mean(smap[mask]))
    return out
