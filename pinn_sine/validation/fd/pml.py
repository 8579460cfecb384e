"""Perfectly matched layer (PML) by complex coordinate stretching.

Conventions shared by the finite-difference Helmholtz solver and the PINN problem:

* time dependence ``exp(-i omega t)``;
* the Helmholtz equation is ``Laplacian(u) + (omega/c)**2 u = -f``;
* the outgoing free-space Green's function of ``Laplacian(G) + k**2 G = -delta`` is
  ``G = (i/4) H0^(1)(k r)``, so waves leave as ``exp(+i k r)``.

The layer sits inside the given bounds on all four sides of the rectangle; the physical
region is the rectangle shrunk by ``width`` on each side. Each derivative is stretched,

    d/dx -> (1/s_x) d/dx,   s_x(x) = 1 + i sigma_x(x) / omega,
    sigma_x(x) = strength * (d(x) / width)**m,

where ``d(x) >= 0`` is the distance into the layer (0 in the physical region) and the
profile's degree is ``m = 2`` ("quadratic") or ``m = 3`` ("cubic"). An outgoing wave
``exp(i k x)`` becomes ``exp(i k x) exp(-(k/omega) int sigma dx)``, so a wave at normal
incidence that crosses the layer twice returns with amplitude
``exp(-2 strength width / ((m + 1) c))``.

The cubic profile has a continuous ``sigma''``, so the stretched coefficients are C^2
across the layer's inner edge (C^1 for the quadratic one): the finite-difference error
then expands cleanly in even powers of h (Richardson extrapolation works) and a network
sees a smoother equation.

The stretched second derivative in non-conservative form (what a PINN residual uses) is

    (1/s) d/dx((1/s) du/dx) = (1/s**2) u_xx - (s'/s**3) u_x,   s' = i sigma'/omega.

The profile functions use only arithmetic, comparisons and ``abs`` so that they work on
NumPy arrays and torch tensors alike; ``relu(a) = (a + |a|)/2``.
"""

from __future__ import annotations

from typing import Any

Bounds = tuple[tuple[float, float], tuple[float, float]]

#: profile name -> degree m of ``sigma = strength (d / width)**m``
PROFILES = {"quadratic": 2, "cubic": 3}
#: the profile every function here uses unless told otherwise (the FD solver and the
#: point-source problem's residual both take it from here, so they stay the same layer)
DEFAULT_PROFILE = "cubic"


def profile_degree(profile: str) -> int:
    """The degree m of a named profile (see :data:`PROFILES`)."""
    try:
        return PROFILES[profile]
    except (KeyError, TypeError):
        raise ValueError(
            f"Invalid PML profile {profile!r}. Must be one of {list(PROFILES)}"
        ) from None


def _check_layer(lo: float, hi: float, width: float, strength: float) -> None:
    if not hi > lo:
        raise ValueError(
            f"PML interval ({lo}, {hi}) is empty or reversed; expected lo < hi. "
            "Pass the bounds in increasing order."
        )
    if not width > 0:
        raise ValueError(
            f"PML width={width} must be > 0; pass a positive width "
            "(or disable the layer where the caller allows width=None/0)."
        )
    if not 2 * width < hi - lo:
        raise ValueError(
            f"PML width={width} leaves no physical region in ({lo}, {hi}) of side "
            f"{hi - lo}: expected 2*width < side. Use width < {(hi - lo) / 2} "
            "or enlarge the domain."
        )
    if not strength >= 0:
        raise ValueError(
            f"PML strength={strength} must be >= 0 (a negative sigma amplifies "
            "outgoing waves); pass a non-negative strength."
        )


def _relu(a: Any) -> Any:
    # (a + |a|)/2 rather than np.maximum/torch.relu, so one expression serves both.
    return (a + abs(a)) / 2


def pml_sigma(
    x: Any, lo: float, hi: float, width: float, strength: float,
    profile: str = DEFAULT_PROFILE,
) -> Any:
    """Damping profile ``sigma(x) = strength * (d(x)/width)**m >= 0``.

    Args:
        x: coordinates, NumPy array or torch tensor of any shape.
        lo, hi: outer bounds of the axis; the layer occupies ``[lo, lo + width]`` and
            ``[hi - width, hi]``.
        width: layer thickness, ``0 < width < (hi - lo)/2``.
        strength: ``sigma`` at the outer boundary, ``>= 0`` (units of c / length).
        profile: ``"quadratic"`` (m = 2) or ``"cubic"`` (m = 3), see :data:`PROFILES`.

    Returns:
        ``sigma`` with the shape and type of ``x``; 0 in the physical region.
    """
    m = profile_degree(profile)
    _check_layer(lo, hi, width, strength)
    d = _relu((lo + width) - x) + _relu(x - (hi - width))
    return strength * (d / width) ** m


def pml_sigma_prime(
    x: Any, lo: float, hi: float, width: float, strength: float,
    profile: str = DEFAULT_PROFILE,
) -> Any:
    """Derivative ``d sigma/dx = m strength d(x)**(m-1) d'(x) / width**m``.

    ``d' = -1`` in the low layer and ``+1`` in the high layer, so the result is negative
    on the low side, positive on the high side and 0 (continuously) in the physical
    region. Arguments and shapes as in :func:`pml_sigma`.
    """
    m = profile_degree(profile)
    _check_layer(lo, hi, width, strength)
    # At most one of the two distances is non-zero at any x.
    d_hi, d_lo = _relu(x - (hi - width)), _relu((lo + width) - x)
    return (m * strength / width**m) * (d_hi ** (m - 1) - d_lo ** (m - 1))


def pml_stretch(
    x: Any, lo: float, hi: float, width: float, strength: float, omega: float,
    profile: str = DEFAULT_PROFILE,
) -> Any:
    """Complex stretch factor ``s(x) = 1 + i sigma(x)/omega`` (complex, shape of ``x``).

    ``omega > 0`` is the angular frequency; other arguments as in :func:`pml_sigma`.
    """
    if not omega > 0:
        raise ValueError(f"omega={omega} must be > 0; pass a positive angular frequency.")
    return 1 + 1j * pml_sigma(x, lo, hi, width, strength, profile) / omega


def physical_mask(x: Any, y: Any, bounds: Bounds, width: float) -> Any:
    """Boolean mask of points in the closed physical region (outside the layer).

    Args:
        x, y: coordinates of matching (broadcastable) shapes, arrays or tensors.
        bounds: ``((x_lo, x_hi), (y_lo, y_hi))``, the outer bounds including the layer.
        width: layer thickness on each side.

    Returns:
        Boolean array/tensor, True where ``x_lo + width <= x <= x_hi - width`` and
        likewise in ``y``.
    """
    (x_lo, x_hi), (y_lo, y_hi) = bounds
    _check_layer(x_lo, x_hi, width, 0.0)
    _check_layer(y_lo, y_hi, width, 0.0)
    return (
        (x >= x_lo + width) & (x <= x_hi - width) & (y >= y_lo + width) & (y <= y_hi - width)
    )
