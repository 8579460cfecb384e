"""Images for the image problems: scikit-image's bundled data, files or arrays."""
from __future__ import annotations

import hashlib
import os

import numpy as np

#: scikit-image's bundled images that need no download
BUNDLED = ("camera", "astronaut", "coffee", "chelsea", "moon", "coins", "text", "brick", "grass", "gravel",
           "rocket", "page", "horse", "checkerboard", "clock", "immunohistochemistry")


def check_size(size) -> tuple[int, int]:
    """``size``: an integer >= 1 (square) or an (H, W) pair of them; ValueError otherwise."""
    def ok(v):
        return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 1
    if ok(size):
        return (int(size), int(size))
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(ok(v) for v in size):
        return (int(size[0]), int(size[1]))
    raise ValueError(f"size must be an integer >= 1 or an (H, W) pair of them, got size={size!r}; e.g. size=128.")


def load_image(image, *, size: int | tuple[int, int] | None = None, grey: bool | None = None) -> np.ndarray:
    """Load an image as float64 in [0, 1], shape (H, W) or (H, W, 3).

    Args:
        image: a bundled scikit-image name (see ``BUNDLED``), a file path (PNG, JPEG,
            TIFF, ...) or an array (uint8 is scaled by 1/255; floats must lie in [0, 1]).
        size: resize to (size, size) or (H, W) with anti-aliasing (None keeps it).
        grey: convert colour to grey (True), keep as is (None), or require colour (False).
    """
    from skimage import color, data, io, transform

    if isinstance(image, np.ndarray):
        arr = image
    elif isinstance(image, (str, os.PathLike)) and str(image) in BUNDLED:
        arr = getattr(data, str(image))()
    elif isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.exists(path):
            raise ValueError(f"image {path!r} is neither a bundled scikit-image name ({', '.join(BUNDLED[:5])}, ...) "
                             "nor an existing file; give a bundled name or a path to a PNG/JPEG/TIFF file.")
        try:
            arr = io.imread(path)
        except Exception as err:  # the readers raise many types for a bad file
            raise ValueError(f"cannot read image file {path!r} ({type(err).__name__}: {err}); "
                             "give a PNG, JPEG or TIFF file.") from err
    else:
        raise ValueError(f"image must be a bundled name, a path or an array, got {type(image).__name__}.")
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float64) / 65535.0
    else:
        arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) colour, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"image values must be finite and in [0, 1], got range [{arr.min()}, {arr.max()}].")
    if grey and arr.ndim == 3:
        arr = color.rgb2gray(arr)
    if grey is False and arr.ndim == 2:
        raise ValueError("a colour image was required, got a grey one.")
    if size is not None:
        shape = check_size(size)
        if min(shape) < 4:
            raise ValueError(f"size must be at least 4 pixels, got {size}.")
        arr = transform.resize(arr, shape + arr.shape[2:], anti_aliasing=True)
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def image_digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
