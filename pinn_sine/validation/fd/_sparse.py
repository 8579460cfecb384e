"""The sparse direct factorisation every FD solver uses."""
from __future__ import annotations

import scipy.sparse
import scipy.sparse.linalg
from threadpoolctl import threadpool_limits


def sparse_lu(A, **options):
    """``scipy.sparse.linalg.splu`` of A (converted to CSC) with BLAS held to one thread.

    SuperLU's BLAS calls are small: on two shared cores, two OpenBLAS threads made a
    129^2 Helmholtz solve 40x slower (0.2 s -> 10 s) once torch had started its own
    threads in the same process. ``options`` pass through to ``splu``.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return scipy.sparse.linalg.splu(scipy.sparse.csc_matrix(A), **options)
