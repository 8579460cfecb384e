"""Pixel grids for the image problems: masks of known pixels (random, blocks,
strokes, a mask image or array, from a spec string) and the anti-aliased rendering of
a network over pixels (the tent filter it was fitted through). Used by
:class:`~pinn_sine.problems.Inpainting`; NumPy and torch only.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn

MASK_FORMS = ('"random:p" (fraction p of the pixels missing, 0 < p < 1)',
              '"blocks:n" or "blocks:n:side" (n square holes of side pixels)',
              '"strokes:n" or "strokes:n:width" (n scribbles of width pixels)',
              "a path to a mask image or a boolean array (True / non-zero = known pixel)")

# ----- masks --------------------------------------------------------------------------
def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_mask(shape: tuple[int, int], missing: float, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Random pixel dropout: exactly ``round(missing * H * W)`` pixels are missing.

    Returns a boolean (H, W) array, True = known pixel (the convention of
    :mod:`pinn_sine.validation.fd.inpaint`).
    """
    if not 0.0 < missing < 1.0:
        raise ValueError(f"the missing fraction must lie in (0, 1), got {missing!r}; use e.g. \"random:0.5\" "
                         "for half of the pixels missing.")
    size = int(np.prod(shape))
    n_missing = int(round(missing * size))
    known = np.ones(size, dtype=bool)
    known[_rng(seed).permutation(size)[:n_missing]] = False
    return known.reshape(shape)


def block_mask(shape: tuple[int, int], n: int, side: int | None = None,
               seed: int | np.random.Generator = 0) -> np.ndarray:
    """``n`` square holes of ``side`` pixels (default min(H, W) / 8) placed uniformly at
    random (they may overlap). Boolean (H, W), True = known."""
    H, W = shape
    side = max(1, round(min(H, W) / 8)) if side is None else int(side)
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"the number of blocks must be an integer >= 1, got {n!r}; use e.g. \"blocks:8\".")
    if not 1 <= side <= min(H, W):
        raise ValueError(f"the block side must be in [1, {min(H, W)}] pixels for a {H} x {W} image, got {side}.")
    rng = _rng(seed)
    known = np.ones(shape, dtype=bool)
    for _ in range(n):
        i = rng.integers(0, H - side + 1)
        j = rng.integers(0, W - side + 1)
        known[i:i + side, j:j + side] = False
    return known


def stroke_mask(shape: tuple[int, int], n: int, width: float | None = None,
                seed: int | np.random.Generator = 0) -> np.ndarray:
    """``n`` scribbles (text-like strokes): random walks of 4 to 8 straight segments with
    slowly turning direction, each segment a capsule of ``width`` pixels (default
    min(H, W) / 50, at least 1). Boolean (H, W), True = known."""
    H, W = shape
    width = max(1.0, min(H, W) / 50) if width is None else float(width)
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"the number of strokes must be an integer >= 1, got {n!r}; use e.g. \"strokes:10\".")
    if not width > 0:
        raise ValueError(f"the stroke width must be > 0 pixels, got {width!r}.")
    rng = _rng(seed)
    I, J = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    missing = np.zeros(shape, dtype=bool)
    r = width / 2
    for _ in range(n):
        p = np.array([rng.uniform(0, H - 1), rng.uniform(0, W - 1)])
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(4, 9))):
            angle += rng.normal(0, 0.8)
            length = rng.uniform(0.05, 0.15) * min(H, W)
            q = np.clip(p + length * np.array([np.cos(angle), np.sin(angle)]), 0, [H - 1, W - 1])
            # distance of every pixel centre to the segment pq
            d = q - p
            t = np.clip(((I - p[0]) * d[0] + (J - p[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
            missing |= (I - p[0] - t * d[0]) ** 2 + (J - p[1] - t * d[1]) ** 2 <= r * r
            p = q
    return ~missing


_BUILDERS = {"random": (random_mask, (float,)), "blocks": (block_mask, (int, int)),
             "strokes": (stroke_mask, (int, float))}


def make_mask(spec, shape: tuple[int, int], seed: int | np.random.Generator = 0) -> np.ndarray:
    """A boolean known-pixel mask (H, W) from a spec (see ``MASK_FORMS``).

    Checks the shape and that there is at least one known and one missing pixel.
    """
    if isinstance(spec, (np.ndarray, list, tuple)) or hasattr(spec, "__array__"):
        known = _as_known(np.asarray(spec), "the mask array")
    elif isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        kind, _, rest = text.partition(":")
        args = rest.split(":") if rest else []
        if kind in _BUILDERS and not os.path.exists(text):
            builder, types = _BUILDERS[kind]
            if not 1 <= len(args) <= len(types):
                raise ValueError(f"cannot parse mask {text!r}; the mask forms are: " + "; ".join(MASK_FORMS) + ".")
            try:
                values = [t(a) for t, a in zip(types, args)]
            except ValueError:
                raise ValueError(f"cannot parse mask {text!r}; the mask forms are: " + "; ".join(MASK_FORMS)
                                 + ".") from None
            known = builder(shape, *values, seed=seed)
        elif os.path.exists(text):
            from skimage import color, io

            try:
                arr = io.imread(text)
            except Exception as err:  # the readers raise many types for a bad file
                raise ValueError(f"cannot read mask file {text!r} ({type(err).__name__}: {err}); "
                                 "give a PNG/TIFF mask with white (non-zero) = known pixel.") from err
            arr = np.asarray(arr)
            if arr.ndim == 3:
                arr = color.rgb2gray(arr[..., :3]) if arr.shape[-1] in (3, 4) else arr[..., 0]
            known = _as_known(arr, f"mask file {text!r}")
        else:
            raise ValueError(f"unknown mask {text!r} (not a mask form and not an existing file); the mask forms "
                             "are: " + "; ".join(MASK_FORMS) + ".")
    else:
        raise ValueError(f"mask must be a string spec, a path or an array, got {type(spec).__name__}; "
                         "the mask forms are: " + "; ".join(MASK_FORMS) + ".")
    if known.shape != tuple(shape):
        raise ValueError(f"mask has shape {known.shape}, the image has shape {tuple(shape)} (after resizing); "
                         "give a mask of the image's (H, W) shape, or change size to match the mask.")
    n_known = int(known.sum())
    if n_known == 0:
        raise ValueError("the mask has no known pixel (all False): there is nothing to fit. True / non-zero "
                         "marks a KNOWN pixel; invert the mask if it marks the holes.")
    if n_known == known.size:
        raise ValueError("the mask has no missing pixel (all True): there is nothing to inpaint. True / non-zero "
                         "marks a KNOWN pixel; invert the mask if it marks the holes.")
    return known


def _as_known(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H, W), got shape {arr.shape}.")
    if arr.dtype == np.bool_:
        return arr.copy()
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} has dtype {arr.dtype}; give a boolean array (True = known pixel).")
    # A mask image: white = known, thresholded at half of the dtype's range (0/1 and
    # 0/255 integer arrays and [0, 1] floats all work).
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype, 1.0)
    return np.asarray(arr, dtype=np.float64) > 0.5 * top


# ----- anti-aliasing and rendering ------------------------------------------------------
def tent_samples(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Samples of the tent density 1 - |d| on [-1, 1] (pixel units): the sum of two
    U(-1/2, 1/2). Mean 0, variance 1/6. ``shape`` is the output shape."""
    return torch.rand(shape, generator=generator) + torch.rand(shape, generator=generator) - 1.0


@torch.no_grad()
def render(net: nn.Module, shape: tuple[int, int], *, bounds=((-1.0, 1.0), (-1.0, 1.0)),
           pixel: tuple[float, float] | None = None, n_samples: int = 16, seed: int = 0,
           batch_size: int = 65536) -> np.ndarray:
    """Render the continuous image ``net`` on an (H, W) node grid over ``bounds``.

    The node (i, j) sits at x = x0 + (x1 - x0) i / (H - 1), y = y0 + (y1 - y0) j / (W - 1)
    (x along rows). With ``pixel = (hx, hy)`` (the pixel spacing the net was trained
    with, in input units), each value is the mean of the net at ``n_samples`` positions
    jittered by the tent density (1 - |dx|)(1 - |dy|), dx, dy in units of (hx, hy), drawn
    in antithetic pairs (+d, -d) from a generator seeded with ``seed``: the
    anti-aliasing filter the net was fitted through. ``pixel=None`` gives point values.

    Returns (H, W) for one output, (H, W, C) for several (float64).
    """
    H, W = shape
    if H < 2 or W < 2:
        raise ValueError(f"render needs at least 2 x 2 pixels, got shape {shape}.")
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    (x0, x1), (y0, y1) = bounds
    X, Y = torch.meshgrid(torch.linspace(x0, x1, H, dtype=torch.float64),
                          torch.linspace(y0, y1, W, dtype=torch.float64), indexing="ij")
    pts = torch.stack([X.ravel(), Y.ravel()], dim=1)
    if pixel is None:
        offsets = torch.zeros(1, 1, 2, dtype=torch.float64)
    else:
        check_jitter(n_samples, "n_samples")
        d = tent_samples((n_samples // 2, 1, 2), torch.Generator().manual_seed(seed)).double()
        d = d * torch.tensor(pixel, dtype=torch.float64)
        offsets = torch.cat([d, -d])
    out = []
    for start in range(0, len(pts), batch_size):
        chunk = pts[start:start + batch_size]
        acc = 0.0
        for off in offsets:  # one pass per jitter keeps memory at batch_size points
            acc = acc + net((chunk + off).to(device=device, dtype=dtype)).double()
        out.append((acc / len(offsets)).cpu())
    u = torch.cat(out).numpy()
    return u.reshape(H, W) if u.shape[1] == 1 else u.reshape(H, W, u.shape[1])


def check_jitter(n: int, name: str) -> int:
    """``n`` as an int, or a ValueError unless it is an even integer >= 2 (antithetic jitter pairs)."""
    if not (isinstance(n, (int, np.integer)) and n >= 2 and n % 2 == 0):
        raise ValueError(f"{name} must be an even integer >= 2 (the jitters come in antithetic pairs +d, -d), "
                         f"got {name}={n!r}; use e.g. 4.")
    return int(n)
