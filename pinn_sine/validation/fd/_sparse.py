"""The sparse direct factorisation every FD solver uses, and a one-call solve."""
from __future__ import annotations

import scipy.sparse
import scipy.sparse.linalg
from threadpoolctl import threadpool_limits


def sparse_lu(A, **options):
    """``scipy.sparse.linalg.splu`` of A (converted to CSC) with BLAS held to one thread.

    SuperLU's BLAS calls are small: several OpenBLAS threads contending with torch's own
    threads in the same process slow a factorisation by orders of magnitude on a shared
    machine (benchmarks/references.py times the solves). ``options`` pass through to ``splu``.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return scipy.sparse.linalg.splu(scipy.sparse.csc_matrix(A), **options)


def sparse_solve(A, b, **options):
    """The solution x of A x = b by :func:`sparse_lu` (BLAS on one thread). ``b`` is
    (n,) or (n, k); ``options`` pass through to ``splu``. For several right-hand sides
    with one matrix, keep ``sparse_lu(A)`` and call its ``solve`` instead."""
    lu = sparse_lu(A, **options)
    with threadpool_limits(limits=1, user_api="blas"):
        return lu.solve(b)
