"""evaluate(net, ref): run a network on a reference's points (a grid, or scattered
points) and report its errors."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .metrics import max_abs, psnr_ssim, rel_l2
from .reference import ReferenceField


@torch.no_grad()
def predict(net, ref: ReferenceField, *, batch_size: int = 65536) -> dict[str, np.ndarray]:
    """The network's fields on the reference's points (``ref.points()``: the grid, or the
    scattered points), shaped like ``ref.fields``."""
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    pts = torch.as_tensor(ref.points(), dtype=dtype)
    try:
        chunks = [net(pts[i:i + batch_size].to(device)).double().cpu() for i in range(0, len(pts), batch_size)]
    except RuntimeError as err:  # a network of other input size, device or dtype
        raise ValueError(f"the network failed on the {len(pts)} points {tuple(pts.shape)} of the reference grid of "
                         f"{ref.problem!r} ({type(err).__name__}: {str(err).splitlines()[0]}); evaluate a network "
                         f"of that problem ({len(ref.coords)} inputs {tuple(ref.coords)}, {ref.out_dim} "
                         "outputs).") from None
    return _split_columns(torch.cat(chunks).numpy(), ref, "the network")


def _split_columns(out: np.ndarray, ref: ReferenceField, what: str) -> dict[str, np.ndarray]:
    """Output columns (N, out_dim) on the grid points -> fields shaped like ``ref.fields``."""
    if out.ndim != 2 or out.shape[0] != int(np.prod(ref.grid_shape)) or out.shape[1] != ref.out_dim:
        raise ValueError(f"{what} gives outputs of shape {out.shape} on the {ref.grid_shape} grid; the reference "
                         f"{ref.problem} needs ({int(np.prod(ref.grid_shape))}, {ref.out_dim}) "
                         f"({list(ref.fields)}).")
    shape = ref.grid_shape
    fields = {}
    for name, cols in ref.columns().items():
        fields[name] = out[:, cols].reshape(ref.fields[name].shape) if ref.fields[name].ndim > len(shape) \
            else out[:, cols.start].reshape(shape)
    return fields


def exact_on_grid(exact: Callable[[torch.Tensor], torch.Tensor], ref: ReferenceField, *,
                  batch_size: int = 65536) -> dict[str, np.ndarray]:
    """An exact solution ``exact(x)`` (x (N, d) float64 tensor -> (N, out_dim)) on the
    reference grid, shaped like ``ref.fields``."""
    pts = torch.as_tensor(ref.points(), dtype=torch.float64)
    chunks = []
    for i in range(0, len(pts), batch_size):
        x = pts[i:i + batch_size]
        chunks.append(torch.as_tensor(exact(x)).detach().double().cpu().reshape(len(x), -1))
    return _split_columns(torch.cat(chunks).numpy(), ref, "the exact solution")


class NonFinitePrediction(ValueError):
    """A prediction (or exact solution) with nan or inf where errors are measured: its
    errors would be nan. ``train`` turns one of its network into TrainingDiverged."""


def check_mask(ref: ReferenceField) -> None:
    """Raise ValueError unless ``ref.mask`` is None or a boolean array of the grid's shape
    that selects at least one point (the region every error is measured over)."""
    mask = ref.mask
    if mask is None:
        return
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        what = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else f"type {type(mask).__name__}"
        raise ValueError(f"the reference's mask has {what}; a mask must be boolean (True where errors are "
                         "measured), e.g. mask=values > 0.5 or mask.astype(bool).")
    if mask.shape != ref.grid_shape:
        raise ValueError(f"the reference's mask has shape {mask.shape}, the grid {ref.grid_shape}.")
    if not mask.any():
        raise ValueError(f"the reference's mask selects no grid point of the {ref.grid_shape} grid: errors over an "
                         "empty region are undefined; mark where errors are measured with True.")


def _check_fields(fields, ref: ReferenceField, what: str) -> None:
    """``fields`` (a prediction or exact solution on the grid) has the reference's fields,
    shapes, and finite values over the region errors are measured on."""
    if not isinstance(fields, dict) or set(fields) != set(ref.fields):
        names = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
        raise ValueError(f"{what} has the fields {names}; the reference of {ref.problem!r} has {sorted(ref.fields)}"
                         " (give a dict of arrays, e.g. problem.predict(net, ref)).")
    bad = np.zeros(ref.grid_shape, dtype=bool)
    for name, values in fields.items():
        values = np.asarray(values)
        if values.shape != ref.fields[name].shape:
            raise ValueError(f"{what}[{name!r}] has shape {values.shape}; the reference's field has shape "
                             f"{ref.fields[name].shape} (the grid {tuple(ref.coords)}).")
        finite = np.isfinite(values)
        bad |= ~(finite if finite.ndim == len(ref.grid_shape) else finite.all(axis=-1))
    if ref.mask is not None:
        bad &= ref.mask
    count = int(bad.sum())
    if count:
        region = int(ref.mask.sum()) if ref.mask is not None else bad.size
        fix = ("give a solution that is finite on the grid." if what == "the exact solution" else
               "a network with non-finite outputs has diverged: retrain it (a lower learning rate or first omega).")
        where = f"{count} of the {region} points of the reference grid" + (" (in its mask)" if ref.mask is not None
                                                                            else "")
        raise NonFinitePrediction(f"{what} has non-finite values (nan or inf) at {where}; its errors would be nan; "
                                  + fix)


def evaluate(net, ref: ReferenceField, *, prediction: dict[str, np.ndarray] | None = None,
             exact: Callable[[torch.Tensor], torch.Tensor] | dict[str, np.ndarray] | None = None) -> dict:
    """Errors of ``net`` against ``ref``, over ``ref.mask`` when it has one.

    Returns a dict with ``rel_l2`` and ``max_abs`` over all fields together, and
    ``rel_l2_<field>`` per field when there are several. Fields named ``*_real`` and
    ``*_imag`` also give ``rel_l2_abs`` of the magnitude. A time-dependent reference
    on a grid (first coordinate ``t``) adds ``rel_l2_per_t``, the error of each time
    slice (a scattered reference has none). A scattered reference (``ref.scattered``)
    is evaluated at its points: the errors are over those points (and its mask). An
    image reference (``attrs["image"]``) adds PSNR and SSIM (``*_region`` over the mask).

    ``reference_error`` is the reference's own estimated error (``ref.error_estimate``),
    present when known: errors of the net below it are not resolved by the reference.
    ``exact`` (a callable x (N, d) tensor -> (N, out_dim), e.g. ``problem.exact``, or its
    fields on the grid from :func:`exact_on_grid`, computed once for repeated calls) adds
    ``rel_l2_exact`` and ``max_abs_exact``: the prediction against the exact solution on
    the same grid points and mask.

    A network that :func:`~pinn_sine.train` trained (or :func:`~pinn_sine.load_net`
    loaded) knows its problem (``net.trained_for``); a reference of another problem is
    refused with ValueError; so are a prediction (or an exact solution) with non-finite
    values where errors are measured, and a mask that is not boolean or selects nothing.
    """
    if not isinstance(ref, ReferenceField):
        raise TypeError(f"ref must be a ReferenceField (problem.reference(...) or load_reference(path)), got {ref!r}.")
    if prediction is None and not isinstance(net, torch.nn.Module):
        raise TypeError(f"net must be a torch module (the trained network), got {net!r}.")
    check_mask(ref)
    trained_for = getattr(net, "trained_for", None)
    if trained_for is not None and trained_for != ref.problem:
        raise ValueError(f"the network was trained for {trained_for!r}, the reference is of {ref.problem!r}; "
                         f"evaluate it against a reference of {trained_for!r} (problem.reference()).")
    in_dim = getattr(net, "in_dim", None)
    if prediction is None and in_dim is not None and in_dim != len(ref.coords):
        raise ValueError(f"the network takes {in_dim} inputs, the reference of {ref.problem!r} is on a grid of "
                         f"{len(ref.coords)} {tuple(ref.coords)}; evaluate a network of that problem.")
    pred = predict(net, ref) if prediction is None else prediction
    _check_fields(pred, ref, "the network's prediction" if prediction is None else "the prediction")
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
    if names and ref.names[0] == "t" and not ref.scattered:  # scattered points have no time slices
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
    if ref.error_estimate is not None:
        out["reference_error"] = ref.error_estimate
    if exact is not None:
        exact_fields = exact if isinstance(exact, dict) else exact_on_grid(exact, ref)
        _check_fields(exact_fields, ref, "the exact solution")
        e_all = stack(exact_fields)
        out["rel_l2_exact"] = rel_l2(p_all, e_all, mask)
        out["max_abs_exact"] = max_abs(p_all, e_all, mask)
    return out


def headline_error(metrics: dict) -> tuple[str, float]:
    """The error a reader should see first, as ``(label, value)``: against the exact
    solution where ``metrics`` has it (``rel_l2_exact``), else against the FD reference
    (``rel_l2``). A reference's own error sets a floor under the second, not the first."""
    if metrics.get("rel_l2_exact") is not None:
        return "vs exact", float(metrics["rel_l2_exact"])
    return "vs reference", float(metrics["rel_l2"])


def describe_errors(metrics: dict) -> str:
    """``rel L2 1.0e-06 vs exact (2.2e-05 vs reference)`` or ``rel L2 3.1e-04 vs reference``."""
    label, value = headline_error(metrics)
    text = f"rel L2 {value:.2e} {label}"
    if label == "vs exact":
        text += f" ({float(metrics['rel_l2']):.2e} vs reference)"
    return text


#: the error against a reference within this factor of its own error estimate is the reference's
REFERENCE_LIMIT_FACTOR = 3.0


def reference_limit(metrics: dict, ref: ReferenceField, *, factor: float = REFERENCE_LIMIT_FACTOR) -> str | None:
    """A warning when the error against ``ref`` (``metrics["rel_l2"]``) is within ``factor``
    of the reference's own error estimate, so that it measures the reference rather than
    the network; None otherwise (or when the estimate is unknown).

    The warning names a resolution that would fix it: the reference error scales as
    h^order, so a grid of n' - 1 = (n - 1) (e_ref / e_target)^(1 / order) intervals, with
    e_target a tenth of the network's error (against the exact solution where known),
    rounded up to 2^k + 1 nodes; and an order-4 solver where the reference is of order 2.
    """
    est = ref.error_estimate
    err = metrics.get("rel_l2")
    if est is None or err is None or not (est > 0) or not np.isfinite(err) or err > factor * est:
        return None
    _, net_err = headline_error(metrics)
    target = max(min(net_err, err), est * 1e-6) / 10
    text = (f"the error against the reference ({err:.2e}) is within {factor:g}x of the reference's own error "
            f"estimate ({est:.2e}, {ref.error_method or 'method unknown'}): it measures the reference, not the "
            "network.")
    n = ref.params.get("resolution")
    order = int(ref.order or 0)
    fixes = []
    if isinstance(n, int) and n > 1 and order > 0:
        wanted = (n - 1) * (est / target) ** (1.0 / order)
        fixes.append(f"--resolution {2 ** int(np.ceil(np.log2(max(wanted, n)))) + 1} (now {n})")
    if order == 2:
        fixes.append("an order-4 reference solver")
    if fixes:
        text += " Use " + " or ".join(fixes) + "."
    return text
