"""Shared fixtures: every test gets its own reference cache, never ~/.cache."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point PINN_SINE_CACHE at a fresh folder for each test."""
    cache = tmp_path_factory.mktemp("pinn_sine_cache")
    monkeypatch.setenv("PINN_SINE_CACHE", str(cache))
    return cache
