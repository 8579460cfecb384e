"""Inpainting: fit an image from its known pixels, with an optional TV or Hessian prior."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .. import sampling
from ..derivatives import DerivativeSpec, Jet
from ..images import image_digest, load_image
from ..validation.reference import ReferenceField
from .base import Problem

PRIORS = ("tv", "hessian")
HESSIAN_FORMS = ("squared", "norm")
CLASSICAL = ("harmonic", "biharmonic", "tv")
#: prior weights used when none is given. The priors are in pixel units, so a weight
#: does not depend on the image size. Not swept: with them SIREN/FINER match the FD
#: biharmonic inpainting of camera (50% missing) within 0.15 dB at 64^2 and 128^2.
DEFAULT_PRIOR_WEIGHT = {"tv": 1e-3, "hessian": 1e-2}
MASK_FORMS = ('"random:p" (fraction p of the pixels missing, 0 < p < 1)',
              '"blocks:n" or "blocks:n:side" (n square holes of side pixels)',
              '"strokes:n" or "strokes:n:width" (n scribbles of width pixels)',
              "a path to a mask image or a boolean array (True / non-zero = known pixel)")
# A Frobenius norm is not differentiable at 0; this floor keeps its gradient finite.
_NORM_EPS = 1e-12


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
        _check_jitter(n_samples, "n_samples")
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


def _check_jitter(n: int, name: str) -> int:
    if not (isinstance(n, (int, np.integer)) and n >= 2 and n % 2 == 0):
        raise ValueError(f"{name} must be an even integer >= 2 (the jitters come in antithetic pairs +d, -d), "
                         f"got {name}={n!r}; use e.g. 4.")
    return int(n)


# ----- the problem ----------------------------------------------------------------------
class Inpainting(Problem):
    """Inpainting with an implicit neural representation phi(x, y) on [-1, 1]^2.

    The net sees only the known pixels b of an image B and is trained on

        L = mean_known (h * phi - b)^2 + prior_weight * R(phi),

    where h * phi is phi averaged over a pixel-sized tent filter (the anti-aliasing
    kernel of the SIREN report, section 4.2; identity with ``antialias=False``) and R is
    evaluated at uniformly drawn continuous points (section 4.1):

        "tv":       R = mean |grad phi|_1 = mean (|phi_x hx| + |phi_y hy|)
        "hessian":  R = mean ||H phi||_F^2  ("squared") or mean ||H phi||_F ("norm"),
                    ||H||_F^2 = (phi_xx hx^2)^2 + 2 (phi_xy hx hy)^2 + (phi_yy hy^2)^2,

    summed over colour channels. The derivatives are measured in pixel units (times
    the pixel spacings hx = 2/(H-1), hy = 2/(W-1)), so a prior weight means the same at
    every image size. The derivatives come from the derivative engine.

    Coordinates: pixel (i, j) (row i, column j) is the node x = -1 + 2 i/(H-1),
    y = -1 + 2 j/(W-1); inputs ("x", "y"), x along rows (as ``Poisson2D.from_image``).

    Batch (:meth:`sample`): "data" holds S = ``n_jitter`` jittered copies of n known
    pixel centres, laid out (S, n) row-major, the jitters in antithetic pairs (+d, -d)
    so that the mean over the S copies is exactly the pixel centre (that is how the
    loss finds each pixel's value; the pairs also cancel the first-order jitter noise).
    Without antialiasing S = 1 and the points are the centres. "prior" holds n uniform
    points of [-1, 1]^2 (only with a prior).

    Reference: :meth:`reference` is the ground-truth image (its mask is the missing
    pixels, so ``evaluate`` reports PSNR/SSIM on the whole image and ``*_region`` on the
    missing pixels); :meth:`classical` gives the finite-difference inpaintings
    (harmonic, biharmonic, TV), cached as HDF5. Evaluate an antialiased net on its
    rendered values: ``evaluate(net, ref, prediction=problem.predict(net))``.

    Args:
        image: a bundled scikit-image name ("camera", "astronaut", ...), a PNG/JPEG/TIFF
            path or an array (H, W) / (H, W, 3) in [0, 1] (or uint8).
        mask: the known pixels: "random:p" (fraction p MISSING), "blocks:n[:side]",
            "strokes:n[:width]", a mask file or a boolean array (True = known).
        size: resize the image to (size, size), or (H, W); None keeps its size.
        grey: convert a colour image to grey (one output); otherwise keep its channels
            (a colour image gives three outputs).
        mask_seed: seed of the random mask builders.
        prior: None, "tv" or "hessian".
        prior_weight: weight of the prior (>= 0); None takes ``DEFAULT_PRIOR_WEIGHT``.
        hessian_form: "squared" (mean squared Frobenius norm) or "norm" (mean norm).
        antialias: fit and render through the tent filter.
        n_jitter: jittered samples per pixel (even, >= 2), when antialiasing.
    """

    name = "inpainting"
    input_names = ("x", "y")
    bounds = ((-1.0, 1.0), (-1.0, 1.0))
    default_batch = 4096
    #: the SIREN image default (Sitzmann et al. 2020) for the first layer
    default_first_omega = 30.0

    def __init__(self, image="camera", mask="random:0.5", *, size: int | tuple[int, int] | None = 128,
                 grey: bool = False, mask_seed: int = 0, prior: str | None = None,
                 prior_weight: float | None = None, hessian_form: str = "squared", antialias: bool = True,
                 n_jitter: int = 4):
        if prior is not None and prior not in PRIORS:
            raise ValueError(f'Invalid prior "{prior}". Must be one of {list(PRIORS)} or None.')
        if prior is None and prior_weight is not None:
            raise ValueError(f"prior_weight={prior_weight!r} was given without a prior; set prior to one of "
                             f"{list(PRIORS)} or drop prior_weight.")
        if prior is not None:
            prior_weight = DEFAULT_PRIOR_WEIGHT[prior] if prior_weight is None else prior_weight
            if not (isinstance(prior_weight, (int, float)) and math.isfinite(prior_weight) and prior_weight >= 0):
                raise ValueError(f"prior_weight must be a finite number >= 0, got prior_weight={prior_weight!r}; "
                                 f"use e.g. {DEFAULT_PRIOR_WEIGHT[prior]} for prior={prior!r}.")
        if hessian_form not in HESSIAN_FORMS:
            raise ValueError(f'Invalid hessian_form "{hessian_form}". Must be one of {list(HESSIAN_FORMS)}.')
        if hessian_form != "squared" and prior != "hessian":
            raise ValueError(f"hessian_form={hessian_form!r} applies to prior='hessian' only, got prior={prior!r}.")
        if not isinstance(antialias, bool):
            raise ValueError(f"antialias must be True or False, got {antialias!r}.")
        self.n_jitter = _check_jitter(n_jitter, "n_jitter")
        self.image = load_image(image, size=size, grey=True if grey else None)
        self.image_spec = os.fspath(image) if isinstance(image, (str, os.PathLike)) else "<array>"
        H, W = self.image.shape[:2]
        self.known = make_mask(mask, (H, W), mask_seed)
        self.mask_spec = os.fspath(mask) if isinstance(mask, (str, os.PathLike)) else "<array>"
        self.mask_seed = int(mask_seed)
        self.prior = prior
        self.prior_weight = None if prior is None else float(prior_weight)
        self.hessian_form = hessian_form
        self.antialias = antialias
        self.out_dim = 1 if self.image.ndim == 2 else self.image.shape[2]
        # pixel spacing in input units: the tent filter's half-width and the prior's unit
        self.h = (2.0 / (H - 1), 2.0 / (W - 1))
        self._values = torch.from_numpy(self.image.reshape(H * W, self.out_dim)).float()
        self._known_index = torch.from_numpy(np.flatnonzero(self.known.ravel()))
        self._nodes = (torch.linspace(-1.0, 1.0, H), torch.linspace(-1.0, 1.0, W))
        self._on_device: dict = {}
        self.derivatives = {"data": DerivativeSpec()}
        if prior == "tv":
            self.derivatives["prior"] = DerivativeSpec(first=("x", "y"))
        elif prior == "hessian":
            self.derivatives["prior"] = DerivativeSpec.hessian(("x", "y"))

    # ----- facts ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """The image grid (H, W)."""
        return self.image.shape[:2]

    @property
    def missing(self) -> np.ndarray:
        """Boolean (H, W), True = missing pixel."""
        return ~self.known

    @property
    def known_fraction(self) -> float:
        return float(self.known.mean())

    @property
    def jitters(self) -> int:
        """Evaluations per pixel in the data term (1 without antialiasing)."""
        return self.n_jitter if self.antialias else 1

    # ----- training ------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        """"data": (S n, 2) jittered known-pixel positions, (S, n) row-major; "prior":
        (n, 2) uniform points (with a prior). n known pixels are drawn without
        replacement (with replacement when n exceeds their number)."""
        K = len(self._known_index)
        sel = torch.randperm(K, generator=generator)[:n] if n <= K else torch.randint(0, K, (n,), generator=generator)
        flat = self._known_index[sel]
        W = self.shape[1]
        centres = torch.stack([self._nodes[0][flat // W], self._nodes[1][flat % W]], dim=1)
        if self.antialias:
            d = tent_samples((self.n_jitter // 2, n, 2), generator) * torch.tensor(self.h, dtype=torch.float32)
            data = torch.cat([centres + d, centres - d]).reshape(-1, 2)
        else:
            data = centres
        out = {"data": data}
        if self.prior is not None:
            out["prior"] = sampling.box(n, self.bounds, generator)
        return out

    def losses(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        S = self.jitters
        pts = batch["data"]
        n = pts.shape[0] // S
        u = jets["data"].u
        filtered = u.reshape(S, n, u.shape[1]).mean(0)
        target = self._pixel_values(pts.reshape(S, n, 2).mean(0), u)
        out = {"data": ((filtered - target) ** 2).mean()}
        if self.prior is not None:
            out["prior"] = self.prior_weight * self.prior_density(jets["prior"]).mean()
        return out

    def prior_density(self, jet: Jet) -> Tensor:
        """The prior's integrand at each point (n,), in pixel units, summed over channels."""
        hx, hy = self.h
        if self.prior == "tv":
            return ((jet.d("x") * hx).abs() + (jet.d("y") * hy).abs()).sum(1)
        if self.prior == "hessian":
            sq = ((jet.d2("x", "x") * hx * hx) ** 2 + 2 * (jet.d2("x", "y") * hx * hy) ** 2
                  + (jet.d2("y", "y") * hy * hy) ** 2).sum(1)
            return sq if self.hessian_form == "squared" else torch.sqrt(sq + _NORM_EPS)
        raise ValueError("this Inpainting has no prior (prior=None).")

    def _pixel_values(self, centres: Tensor, like: Tensor) -> Tensor:
        """The image values (n, C) at pixel centres (n, 2)."""
        key = (like.device, like.dtype)
        if key not in self._on_device:
            self._on_device[key] = self._values.to(device=like.device, dtype=like.dtype)
        H, W = self.shape
        i = torch.round((centres[:, 0] + 1.0) * (H - 1) / 2).long().clamp(0, H - 1)
        j = torch.round((centres[:, 1] + 1.0) * (W - 1) / 2).long().clamp(0, W - 1)
        return self._on_device[key][i * W + j]

    # ----- rendering -----------------------------------------------------------------
    def render(self, net: nn.Module, shape: tuple[int, int] | None = None, *, bounds=None,
               n_samples: int = 16, seed: int = 0) -> np.ndarray:
        """The net's image on an (H', W') grid over ``bounds`` (default the image's
        shape and [-1, 1]^2), through the tent filter of one training pixel when the
        problem antialiases. Any resolution: ``render(net, (4 H, 4 W))``."""
        return render(net, self.shape if shape is None else shape, bounds=bounds or self.bounds,
                      pixel=self.h if self.antialias else None, n_samples=n_samples, seed=seed)

    def predict(self, net: nn.Module, ref: ReferenceField | None = None, *, n_samples: int = 16,
                seed: int = 0) -> dict[str, np.ndarray]:
        """{"u": the rendered image} on the pixel grid (through the tent filter when the
        problem antialiases), for ``evaluate(..., prediction=)``; ``ref`` is the ground
        truth's grid, the same pixels."""
        return {"u": self.render(net, n_samples=n_samples, seed=seed)}

    # ----- references ----------------------------------------------------------------
    def params(self) -> dict:
        out = self.data_params()
        out.update(prior=self.prior, prior_weight=self.prior_weight, hessian_form=self.hessian_form,
                   antialias=self.antialias, n_jitter=self.n_jitter)
        return out

    def data_params(self) -> dict:
        """What determines the image and the mask (the key of the cached references)."""
        H, W = self.shape
        return {"image": self.image_spec, "image_sha": image_digest(self.image), "shape": [H, W],
                "channels": self.out_dim, "mask": self.mask_spec, "mask_seed": self.mask_seed,
                "mask_sha": image_digest(self.known.astype(np.uint8))}

    def _field(self, u: np.ndarray, params: dict, solver: str, order: int) -> ReferenceField:
        H, W = self.shape
        return ReferenceField(problem=self.name, params=params,
                              coords={"x": np.linspace(-1.0, 1.0, H), "y": np.linspace(-1.0, 1.0, W)},
                              fields={"u": np.asarray(u, dtype=np.float64)}, solver=solver, order=order,
                              spacing={"x": self.h[0], "y": self.h[1]}, mask=self.missing.copy(),
                              attrs={"image": True, "data_range": 1.0})

    def _compute_reference(self, resolution: int) -> ReferenceField:
        return self._field(self.image, dict(self.data_params(), field="truth"), "ground-truth", 0)

    def reference(self, resolution: int | None = None, *, cache: bool = True) -> ReferenceField:
        """The ground-truth image as a ReferenceField (field "u" (H, W) or (H, W, 3), mask =
        missing pixels, attrs image/data_range), stored through the HDF5 cache. The
        grid is the pixel grid: ``resolution`` must be None or the (square) image size."""
        from ..validation.store import cached_reference

        H, W = self.shape
        if resolution is not None and (H != W or int(resolution) != H):
            raise ValueError(f"the inpainting reference lives on the {H} x {W} pixel grid; got "
                             f"resolution={resolution}. Use resolution=None (or change size).")
        params = dict(self.data_params(), field="truth")
        return cached_reference(self.name, params, lambda: self._compute_reference(H), cache=cache)

    def classical(self, method: str = "biharmonic", *, cache: bool = True) -> ReferenceField:
        """The finite-difference inpainting ``fd.inpaint_<method>`` of the known pixels
        (method "harmonic", "biharmonic" or "tv"), as a ReferenceField like
        :meth:`reference` (solver = method), cached as HDF5 keyed by the data and method."""
        from ..validation import fd
        from ..validation.store import cached_reference

        if method not in CLASSICAL:
            raise ValueError(f'Invalid method "{method}". Must be one of {list(CLASSICAL)}.')
        solver = {"harmonic": fd.inpaint_harmonic, "biharmonic": fd.inpaint_biharmonic, "tv": fd.inpaint_tv}
        order = {"harmonic": 2, "biharmonic": 2, "tv": 1}[method]
        params = dict(self.data_params(), field="classical", method=method)
        return cached_reference(
            self.name, params,
            lambda: self._field(solver[method](self.image * self._known_3d(), self.known), params, method, order),
            cache=cache)

    def _known_3d(self) -> np.ndarray:
        return self.known if self.image.ndim == 2 else self.known[..., None]

    # ----- figures -------------------------------------------------------------------
    def figures(self, net: nn.Module, ref: ReferenceField, out_dir: str | os.PathLike, *,
                method: str = "biharmonic") -> list[Path]:
        """Write inpainting.png (ground truth, masked input, network, FD ``method``, the
        two error maps), inpainting_zoom.png (a central crop of each, at pixel
        resolution) and inpainting_render4x.png (the crop rendered by the net at 4x
        resolution beside the pixels it was fitted to). Returns the paths."""
        from matplotlib.figure import Figure

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        truth = ref.fields["u"]
        pred = np.clip(self.render(net), 0.0, 1.0)
        fd_img = np.clip(self.classical(method).fields["u"], 0.0, 1.0)
        grey = truth.ndim == 2
        masked = np.repeat(truth[..., None], 3, axis=-1) if grey else truth.copy()
        masked[self.missing] = (1.0, 0.0, 0.0)  # missing pixels in red
        err_net = np.abs(pred - truth) if grey else np.abs(pred - truth).mean(-1)
        err_fd = np.abs(fd_img - truth) if grey else np.abs(fd_img - truth).mean(-1)
        emax = float(max(err_net.max(), err_fd.max(), 1e-12))
        show = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grey else {}
        paths = []

        fig = Figure(figsize=(15, 8.6), layout="constrained")
        axs = fig.subplots(2, 3)
        panels = [(truth, "ground truth", show), (masked, f"input ({100 * self.known_fraction:.0f}% known)", show),
                  (pred, "network", show), (fd_img, f"FD {method}", show),
                  (err_net, "|network - truth|", {"cmap": "magma", "vmin": 0.0, "vmax": emax}),
                  (err_fd, f"|FD {method} - truth|", {"cmap": "magma", "vmin": 0.0, "vmax": emax})]
        for ax, (img, title, kw) in zip(axs.ravel(), panels):
            im = ax.imshow(img, **kw)
            ax.set_title(title)
            ax.set_axis_off()
            if "magma" in kw.values():
                fig.colorbar(im, ax=ax, shrink=0.8)
        paths.append(out_dir / "inpainting.png")
        fig.savefig(paths[-1], dpi=100)

        H, W = self.shape
        ci, cj = slice(3 * H // 8, 5 * H // 8 + 1), slice(3 * W // 8, 5 * W // 8 + 1)
        fig = Figure(figsize=(15, 4), layout="constrained")
        axs = fig.subplots(1, 4)
        for ax, (img, title) in zip(axs, [(truth, "truth"), (masked, "input"), (pred, "network"),
                                          (fd_img, f"FD {method}")]):
            ax.imshow(img[ci, cj], interpolation="nearest", **show)
            ax.set_title(f"{title} (crop)")
            ax.set_axis_off()
        paths.append(out_dir / "inpainting_zoom.png")
        fig.savefig(paths[-1], dpi=100)

        x, y = self._nodes[0].numpy(), self._nodes[1].numpy()
        crop_bounds = ((float(x[ci.start]), float(x[ci.stop - 1])), (float(y[cj.start]), float(y[cj.stop - 1])))
        nh, nw = ci.stop - ci.start, cj.stop - cj.start
        fine = np.clip(self.render(net, (4 * (nh - 1) + 1, 4 * (nw - 1) + 1), bounds=crop_bounds), 0.0, 1.0)
        fig = Figure(figsize=(10, 5), layout="constrained")
        axs = fig.subplots(1, 2)
        axs[0].imshow(pred[ci, cj], interpolation="nearest", **show)
        axs[0].set_title(f"network at the pixel grid ({nh} x {nw})")
        axs[1].imshow(fine, interpolation="nearest", **show)
        axs[1].set_title(f"network rendered at 4x ({fine.shape[0]} x {fine.shape[1]})")
        for ax in axs:
            ax.set_axis_off()
        paths.append(out_dir / "inpainting_render4x.png")
        fig.savefig(paths[-1], dpi=100)
        return paths
