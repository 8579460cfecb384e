"""Reference fields (FD solvers, HDF5 store) and the metrics a network is judged by."""
from . import fd
from .evaluate import evaluate, predict
from .metrics import max_abs, psnr_ssim, rel_l2
from .reference import ReferenceField, params_hash
from .store import ReferenceFileError, cache_dir, load_reference, save_reference

__all__ = ["fd", "evaluate", "predict", "rel_l2", "max_abs", "psnr_ssim", "ReferenceField", "params_hash",
           "ReferenceFileError", "cache_dir", "load_reference", "save_reference"]
