"""evaluate(net, ref): run a network on a reference grid and report its errors."""
from __future__ import annotations

import numpy as np
import torch

from .metrics import max_abs, psnr_ssim, rel_l2
from .reference import ReferenceField


@torch.no_grad()
def predict(net, ref: ReferenceField, *, batch_size: int = 65536) -> dict[str, np.ndarray]:
    """The network's fields on the reference grid, shaped like ``ref.fields``."""
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    pts = torch.as_tensor(ref.points(), dtype=dtype)
    chunks = [net(pts[i:i + batch_size].to(device)).double().cpu() for i in range(0, len(pts), batch_size)]
    out = torch.cat(chunks).numpy()
    if out.shape[1] != ref.out_dim:
        raise ValueError(f"the network has {out.shape[1]} outputs, the reference {ref.problem} has "
                         f"{ref.out_dim} ({list(ref.fields)}).")
    shape = ref.grid_shape
    fields = {}
    for name, cols in ref.columns().items():
        fields[name] = out[:, cols].reshape(ref.fields[name].shape) if ref.fields[name].ndim > len(shape) \
            else out[:, cols.start].reshape(shape)
    return fields


def evaluate(net, ref: ReferenceField, *, prediction: dict[str, np.ndarray] | None = None) -> dict:
    """Errors of ``net`` against ``ref``, over ``ref.mask`` when it has one.

    Returns a dict with ``rel_l2`` and ``max_abs`` over all fields together, and
    ``rel_l2_<field>`` per field when there are several. Fields named ``*_real`` and
    ``*_imag`` also give ``rel_l2_abs`` of the magnitude. A time-dependent reference
    (first coordinate ``t``) adds ``rel_l2_per_t``, the error of each time slice. An
    image reference (``attrs["image"]``) adds PSNR and SSIM (``*_region`` over the mask).
    """
    pred = predict(net, ref) if prediction is None else prediction
    mask = ref.mask
    names = list(ref.fields)

    def stack(d):
        return np.stack([np.asarray(d[n]).reshape(ref.grid_shape + (-1,)) for n in names], axis=-1)

    p_all, r_all = stack(pred), stack(ref.fields)
    out: dict = {"rel_l2": rel_l2(p_all, r_all, mask), "max_abs": max_abs(p_all, r_all, mask)}
    if len(names) > 1:
        for n in names:
            out[f"rel_l2_{n}"] = rel_l2(pred[n], ref.fields[n], mask)
    real = [n for n in names if n.endswith("_real")]
    for n in real:
        stem = n[: -len("_real")]
        if stem + "_imag" in ref.fields:
            mag_p = np.hypot(pred[n], pred[stem + "_imag"])
            mag_r = np.hypot(ref.fields[n], ref.fields[stem + "_imag"])
            out[f"rel_l2_{stem}_abs" if stem != "u" else "rel_l2_abs"] = rel_l2(mag_p, mag_r, mask)
    if names and ref.names[0] == "t":
        per_t = []
        for k in range(ref.grid_shape[0]):
            m = None if mask is None else mask[k]
            r = r_all[k]
            if np.linalg.norm(r if m is None else r[m]) == 0:
                per_t.append(float("nan"))
            else:
                per_t.append(rel_l2(p_all[k], r, m))
        out["rel_l2_per_t"] = per_t
    if ref.attrs.get("image"):
        img_p = pred[names[0]]
        img_r = ref.fields[names[0]]
        out.update(psnr_ssim(img_p, img_r, mask, data_range=float(ref.attrs.get("data_range", 1.0))))
    return out
