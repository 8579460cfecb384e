"""Inpainting: fit an image from its known pixels, with an optional TV or Hessian prior."""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import Tensor, nn

from .. import sampling
from ..derivatives import DerivativeSpec, Jet
from ..images import image_digest, load_image
from ..pixels import check_jitter, make_mask, render, tent_samples
from ..validation.reference import ReferenceField
from .base import Problem

PRIORS = ("tv", "hessian")
HESSIAN_FORMS = ("squared", "norm")
PREDICT_FILTERS = ("point", "tent")
PRIOR_REGIONS = ("all", "missing")
CLASSICAL = ("harmonic", "biharmonic", "tv")
#: prior weights used when none is given. The priors are in pixel units, so a weight
#: does not depend on the image size. TV: swept on camera at 128^2 (issue 30,
#: benchmarks/inpainting.py, 60 s runs of SIREN 128 x 3, batch 1024): 3e-4, 1e-3, 3e-3,
#: 7e-3, 1e-2, 2e-2, 4e-2; 1e-2 was best at 50% missing (28.0 dB, SSIM 0.939). Hessian:
#: 3e-2 and 1e-1 were below TV at every mask.
DEFAULT_PRIOR_WEIGHT = {"tv": 1e-2, "hessian": 1e-2}
# A Frobenius norm is not differentiable at 0; this floor keeps its gradient finite.
_NORM_EPS = 1e-12


# ----- the problem ----------------------------------------------------------------------
class Inpainting(Problem):
    """Inpainting with an implicit neural representation phi(x, y) on [-1, 1]^2.

    The net sees only the known pixels b of an image B and is trained on

        L = mean_known (h * phi - b)^2 + prior_weight * R(phi),

    where h * phi is phi averaged over a pixel-sized tent filter (the anti-aliasing
    kernel of the SIREN report, section 4.2; identity with ``antialias=False``) and R is
    evaluated at continuous points drawn uniformly (section 4.1; or Sobol / LHS,
``prior_sampling``):

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
    points of [-1, 1]^2 (only with a prior); "prior_scale" (1,) the decay factor
    ``prior_decay ** progress`` (only with ``prior_decay < 1``).

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
        prior: "tv" (the default), "hessian" or None ("none").
        prior_weight: weight of the prior (>= 0); None takes ``DEFAULT_PRIOR_WEIGHT``.
        prior_decay: the prior weight's fraction at the end of training, in (0, 1]: the
            weight is ``prior_weight * prior_decay ** progress`` (progress = the fraction
            of the run done, as :meth:`sample` receives it); 1 keeps it constant.
        prior_sampling: how the prior's continuous points are drawn: "uniform" (the
            default), "sobol" or "lhs" (level with uniform in the sweeps: 28.06 and
            27.95 dB against 28.01).
        prior_region: where the prior's points lie: "all" of [-1, 1]^2 (the default) or
            the cells of the "missing" pixels only (R is then the mean over the missing
            area: the prior acts only where no pixel is known). Measured on the 8-block
            mask at 256^2 (benchmarks/inpainting_sweeps.md): worse in three of four runs,
            by ~2 dB on coins (the holes fill like TV inpainting: flat, sharp-edged).
        hessian_form: "squared" (mean squared Frobenius norm) or "norm" (mean norm).
        antialias: fit and render through the tent filter.
        n_jitter: jittered samples per pixel (even, >= 2), when antialiasing; one
            antithetic pair (2) gave the accuracy of 4 (27.8 and 27.9 dB) at 0.6 of the step time.
        keep_known: :meth:`predict` hands back the known pixels themselves and the
            network only on the missing ones (as the FD inpaintings do); False: the
            rendered network everywhere.
        predict_filter: what :meth:`predict` hands back at a pixel: the net's value at
            its centre ("point") or its tent average ("tent", the filter it was fitted
            through). camera 256^2, 50% missing, one net: point 30.59 dB / SSIM 0.9404,
            tent 29.98 / 0.9395 (16 jitters), 30.35 / 0.9404 (64 jitters, 4x the time).

    Defaults (issue 30, ``benchmarks/inpainting.py`` and ``benchmarks/inpainting_sweeps.md``):
    TV prior of weight 1e-2, batch 1024, 2 jitters, first omega 30, Adam lr 1e-3, point
    values at the missing pixels, known pixels kept. With :attr:`recipe` (SIREN 128 x 3,
    12000 Adam steps without a stall stop, the mean of the last 6 iterates) at 256^2, in
    196-232 s on one thread, they beat the best of harmonic, biharmonic and TV in PSNR and
    SSIM on the missing pixels in 6 of 9 cells (camera, moon, coins x 50% / 90% random, 8
    blocks; median of seeds 0 and 1). Short: the camera blocks (-0.97 dB), moon at 50%
    (-0.16 dB, SSIM -0.0024) and the coins blocks (-0.25 dB). ``train``'s default stall
    stop ends Adam early on the block masks and on moon (5 of 9 with it, in earlier runs).
    """

    name = "inpainting"
    bad_params = ({"prior": "l1"}, {"antialias": "yes"}, {"prior_weight": -1.0}, {"prior_decay": 0.0},
                  {"keep_known": "yes"})
    input_names = ("x", "y")
    bounds = ((-1.0, 1.0), (-1.0, 1.0))
    #: known pixels per step. Many small steps beat few large ones in a time budget: at
    #: 128^2 in 60 s (camera, 50% missing, 2 jitters), TV 1e-2 reached 28.0 dB with batch
    #: 1024 and 27.6 with 2048; TV 3e-3 27.9 with 512, 27.8 with 1024
    default_batch = 1024
    #: the SIREN image default (Sitzmann et al. 2020) for the first layer
    default_first_omega = 30.0
    #: ``pinn-sine solve inpainting``: 12000 Adam steps (about 4-5 minutes on one CPU
    #: thread: the step costs the same at any image size), never stopped early (class
    #: docstring: Adam's loss stalls for a while on block masks and on moon and then improves
    #: again), and the answer is the mean, as functions, of the network after every 250th
    #: of the last 1500 steps (``--ensemble 6 --ensemble-every 250``: less noise between the
    #: pixels, +0.0001-0.0006 SSIM over the last iterate in each of the 9 cells of
    #: benchmarks/inpainting_sweeps.md)
    recipe = {"stall": "off", "stage": ["adam:steps=12000"], "ensemble": 6, "ensemble_every": 250}

    def __init__(self, image="camera", mask="random:0.5", *, size: int | tuple[int, int] | None = 128,
                 grey: bool = False, mask_seed: int = 0, prior: str | None = "tv",
                 prior_weight: float | None = None, prior_decay: float = 1.0, prior_sampling: str = "uniform",
                 prior_region: str = "all",
                 hessian_form: str = "squared", antialias: bool = True, n_jitter: int = 2, keep_known: bool = True,
                 predict_filter: str = "point"):
        if isinstance(prior, str) and prior.lower() == "none":  # the command line's spelling of None
            prior = None
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
        if not (isinstance(prior_decay, (int, float)) and not isinstance(prior_decay, bool)
                and 0.0 < prior_decay <= 1.0):
            raise ValueError(f"prior_decay must be a number in (0, 1] (the prior weight's final fraction), got "
                             f"prior_decay={prior_decay!r}; use 1 for a constant weight.")
        if prior_decay != 1.0 and prior is None:
            raise ValueError(f"prior_decay={prior_decay!r} was given without a prior; set prior to one of "
                             f"{list(PRIORS)} or drop prior_decay.")
        if prior_sampling not in sampling.METHODS:
            raise ValueError(f'Invalid prior_sampling "{prior_sampling}". Must be one of {list(sampling.METHODS)}.')
        if prior_region not in PRIOR_REGIONS:
            raise ValueError(f'Invalid prior_region "{prior_region}". Must be one of {list(PRIOR_REGIONS)}.')
        if prior_region != "all" and prior is None:
            raise ValueError(f"prior_region={prior_region!r} was given without a prior; set prior to one of "
                             f"{list(PRIORS)} or drop prior_region.")
        if predict_filter not in PREDICT_FILTERS:
            raise ValueError(f'Invalid predict_filter "{predict_filter}". Must be one of {list(PREDICT_FILTERS)}.')
        if hessian_form not in HESSIAN_FORMS:
            raise ValueError(f'Invalid hessian_form "{hessian_form}". Must be one of {list(HESSIAN_FORMS)}.')
        if hessian_form != "squared" and prior != "hessian":
            raise ValueError(f"hessian_form={hessian_form!r} applies to prior='hessian' only, got prior={prior!r}.")
        for flag, value in (("antialias", antialias), ("keep_known", keep_known)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be True or False, got {value!r}.")
        self.n_jitter = check_jitter(n_jitter, "n_jitter")
        self.image = load_image(image, size=size, grey=True if grey else None)
        self.image_spec = os.fspath(image) if isinstance(image, (str, os.PathLike)) else "<array>"
        H, W = self.image.shape[:2]
        self.known = make_mask(mask, (H, W), mask_seed)
        self.mask_spec = os.fspath(mask) if isinstance(mask, (str, os.PathLike)) else "<array>"
        self.mask_seed = int(mask_seed)
        self.prior = prior
        self.prior_weight = None if prior is None else float(prior_weight)
        self.prior_decay = float(prior_decay)
        self.prior_sampling = prior_sampling
        self.prior_region = prior_region
        self.hessian_form = hessian_form
        self.antialias = antialias
        self.keep_known = keep_known
        self.predict_filter = predict_filter
        self.out_dim = 1 if self.image.ndim == 2 else self.image.shape[2]
        # pixel spacing in input units: the tent filter's half-width and the prior's unit
        self.h = (2.0 / (H - 1), 2.0 / (W - 1))
        self._values = torch.from_numpy(self.image.reshape(H * W, self.out_dim)).float()
        self._known_index = torch.from_numpy(np.flatnonzero(self.known.ravel()))
        self._missing_index = torch.from_numpy(np.flatnonzero(~self.known.ravel()))
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
        (n, 2) points of ``prior_region`` (with a prior). n known pixels are drawn without
        replacement (with replacement when n exceeds their number)."""
        K = len(self._known_index)
        sel = torch.randperm(K, generator=generator)[:n] if n <= K else torch.randint(0, K, (n,), generator=generator)
        centres = self._centres(self._known_index[sel])
        if self.antialias:
            d = tent_samples((self.n_jitter // 2, n, 2), generator) * torch.tensor(self.h, dtype=torch.float32)
            data = torch.cat([centres + d, centres - d]).reshape(-1, 2)
        else:
            data = centres
        out = {"data": data}
        if self.prior is not None:
            out["prior"] = self._prior_points(n, generator)
            if self.prior_decay != 1.0:
                out["prior_scale"] = torch.tensor([self.prior_decay ** float(progress)])
        return out

    def _prior_points(self, n: int, generator: torch.Generator) -> Tensor:
        """The prior's n points: uniform over [-1, 1]^2 (``prior_region="all"``), or over
        the union of the missing pixels' cells (``"missing"``: a missing pixel drawn
        uniformly, then a point of its cell [x - hx/2, x + hx/2] x [y - hy/2, y + hy/2],
        clipped to the image), each by ``prior_sampling``."""
        if self.prior_region == "all":
            return sampling.box(n, self.bounds, generator, self.prior_sampling)
        M = len(self._missing_index)
        centres = self._centres(self._missing_index[torch.randint(0, M, (n,), generator=generator)])
        hx, hy = self.h
        offsets = sampling.box(n, ((-hx / 2, hx / 2), (-hy / 2, hy / 2)), generator, self.prior_sampling)
        return (centres + offsets).clamp(-1.0, 1.0)

    def _centres(self, flat: Tensor) -> Tensor:
        """The (x, y) centres (n, 2) of the pixels with row-major indices ``flat`` (n,)."""
        W = self.shape[1]
        return torch.stack([self._nodes[0][flat // W], self._nodes[1][flat % W]], dim=1)

    def losses(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        S = self.jitters
        pts = batch["data"]
        n = pts.shape[0] // S
        u = jets["data"].u
        filtered = u.reshape(S, n, u.shape[1]).mean(0)
        target = self._pixel_values(pts.reshape(S, n, 2).mean(0), u)
        out = {"data": ((filtered - target) ** 2).mean()}
        if self.prior is not None:
            scale = batch["prior_scale"].reshape(()) if "prior_scale" in batch else 1.0
            out["prior"] = self.prior_weight * scale * self.prior_density(jets["prior"]).mean()
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
        """{"u": the inpainted image} on the pixel grid, for ``evaluate(...,
        prediction=)``: the net at the pixel centres (``predict_filter="point"``) or its
        tent average of ``n_samples`` jitters (``"tent"``, when the problem antialiases),
        with the known pixels themselves where ``keep_known``; ``ref`` is the ground
        truth's grid, the same pixels."""
        if self.predict_filter == "point":
            u = render(net, self.shape, bounds=self.bounds, pixel=None)
        else:
            u = self.render(net, n_samples=n_samples, seed=seed)
        if self.keep_known:
            u[self.known] = self.image[self.known]
        return {"u": u}

    # ----- references ----------------------------------------------------------------
    def params(self) -> dict:
        out = self.data_params()
        out.update(prior=self.prior, prior_weight=self.prior_weight, prior_decay=self.prior_decay,
                   prior_sampling=self.prior_sampling, prior_region=self.prior_region, hessian_form=self.hessian_form,
                   antialias=self.antialias, n_jitter=self.n_jitter, keep_known=self.keep_known,
                   predict_filter=self.predict_filter)
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

    def compute_reference(self, resolution: int) -> ReferenceField:
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
        return cached_reference(self.name, params, lambda: self.compute_reference(H), cache=cache)

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
