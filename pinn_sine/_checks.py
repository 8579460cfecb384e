"""Argument checks shared by the constructors (STYLE.md: check invariants at construction)."""
from __future__ import annotations

import math


def positive(name: str, value, fix: str) -> float:
    """``value`` as a float, or a ValueError naming it and the fix unless it is a finite
    number > 0 (the one positive-number check of the package)."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"{name} must be a positive number, got {name}={value!r}; {fix}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {name}={value!r}; {fix}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0, got {name}={value!r}; {fix}")
    return v


def non_negative(name: str, value, why: str, fix: str) -> float:
    """``value`` as a float, or a ValueError naming it, ``why`` a negative value is wrong
    and the fix, unless it is finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}; {fix}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be >= 0 ({why}), got {name}={value!r}; {fix}")
    return v
