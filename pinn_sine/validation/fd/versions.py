"""The version of each reference solver's output, recorded in every reference file.

``SOLVER_VERSIONS`` maps a solver name (``ReferenceField.solver``, ``FDSolution.solver``)
to an integer. **Bump a solver's version whenever its output changes** -- a different
stencil, boundary treatment, time step rule, tolerance or default grid -- even when
the parameters that key the cache stay the same. ``save_reference`` writes the current
version into the file as ``solver_version``, and the reference cache treats a file
written by another version of its solver as stale and recomputes it (with a warning).
Without the bump, cached fields from the old solver would keep being served.

A solver that is not listed (a user's own) has version 0; listing it later at version 1
invalidates the files it wrote before.
"""
from __future__ import annotations

SOLVER_VERSIONS: dict[str, int] = {
    # Poisson (fd/poisson.py): 5-point Laplacian, DST fast path or sparse LU; order 4:
    # the compact 9-point (Mehrstellen) scheme with its right-hand-side correction.
    "fd5-dst": 1,
    "fd5-sparse": 1,
    "fd9-dst": 1,
    "fd9-sparse": 1,
    # Helmholtz (fd/helmholtz.py): 5-point stencil, sparse LU, with or without a PML;
    # order 4: the compact 9-point scheme (no PML) or Richardson extrapolation of
    # fd5-pml-splu (bump it with fd5-pml-splu). fd5-pml-splu 2: the default PML
    # profile became cubic (was quadratic).
    "fd5-splu": 1,
    "fd5-pml-splu": 2,
    "fd9-splu": 1,
    "fd5-pml-splu-richardson": 1,
    # Wave equation (fd/wave.py): second-order leapfrog in time and space; fourth-order
    # space with the modified-equation leapfrog (leapfrog4) or with exact time per sine
    # mode (dst2-/dst4-exact-time).
    "leapfrog": 1,
    "leapfrog4": 1,
    "dst2-exact-time": 1,
    "dst4-exact-time": 1,
    # General linear second-order elliptic operators (fd/linear.py): central 9-point
    # (order 2), wide 25-point stencils with off-centre closures (order 4).
    "linear-fd9-splu": 1,
    "linear-fd25-splu": 1,
    # Inpainting (problems/inpainting.py, fd/inpaint.py): the ground-truth image and the
    # classical inpainting baselines.
    "ground-truth": 1,
    "harmonic": 1,
    "biharmonic": 1,
    "tv": 1,
}


def solver_version(solver: str) -> int:
    """The current version of ``solver``'s output: ``SOLVER_VERSIONS[solver]``, 0 when unlisted."""
    return int(SOLVER_VERSIONS.get(solver, 0))


def table_digest() -> str:
    """A short digest of the whole table: part of every cache file name, so a bump of
    any solver's version (or a problem switching to another solver, whose name the cache
    cannot know before it solves) never serves a file from before the change."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(SOLVER_VERSIONS, sort_keys=True).encode()).hexdigest()[:8]
