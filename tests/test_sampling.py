"""Point samplers: shapes, bounds, faces, determinism, quasi-random structure, errors."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine import sampling

BOUNDS = ((0.0, 4.0), (-1.0, 0.0), (2.0, 2.5))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("method", sampling.METHODS)
@pytest.mark.parametrize("n", [1, 100, 256])
def test_box_shape_and_bounds(method, n):
    pts = sampling.box(n, BOUNDS, _gen(), method)
    assert pts.shape == (n, 3) and pts.dtype == torch.float32
    for d, (lo, hi) in enumerate(BOUNDS):
        assert (pts[:, d] >= lo).all() and (pts[:, d] <= hi).all()


@pytest.mark.parametrize("method", sampling.METHODS)
def test_box_deterministic(method):
    a = sampling.box(64, BOUNDS, _gen(1), method)
    b = sampling.box(64, BOUNDS, _gen(1), method)
    c = sampling.box(64, BOUNDS, _gen(2), method)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("method", sampling.METHODS)
def test_box_fills_the_box(method):
    pts = sampling.box(4096, ((0.0, 1.0), (0.0, 1.0)), _gen(), method)
    assert torch.allclose(pts.mean(0), torch.full((2,), 0.5), atol=0.02)
    assert torch.allclose(pts.std(0), torch.full((2,), 1 / math.sqrt(12)), atol=0.02)


def test_sobol_is_a_net():
    """Scrambled 2-D Sobol: the first 2^8 points put exactly one point in each cell of a
    16 x 16 grid (a (0, 8, 2)-net), which uniform sampling essentially never does."""
    pts = sampling.unit_cube(256, 2, _gen(), "sobol")
    cells = (pts * 16).floor().long()
    counts = torch.bincount(cells[:, 0] * 16 + cells[:, 1], minlength=256)
    assert (counts == 1).all()
    uniform = (sampling.unit_cube(256, 2, _gen(), "uniform") * 16).floor().long()
    assert not (torch.bincount(uniform[:, 0] * 16 + uniform[:, 1], minlength=256) == 1).all()


def test_lhs_is_stratified():
    n = 50
    pts = sampling.unit_cube(n, 3, _gen(), "lhs")
    for d in range(3):
        strata = (pts[:, d] * n).floor().long()
        assert torch.equal(torch.sort(strata)[0], torch.arange(n))


def test_box_boundary_on_faces():
    pts = sampling.box_boundary(500, BOUNDS, _gen())
    assert pts.shape == (500, 3)
    lo = torch.tensor([b[0] for b in BOUNDS])
    hi = torch.tensor([b[1] for b in BOUNDS])
    assert ((pts >= lo) & (pts <= hi)).all()
    assert ((pts == lo) | (pts == hi)).any(dim=1).all()


def test_box_boundary_face_measure():
    """Faces are drawn in proportion to their length: on [0, 4] x [0, 1] the two faces
    normal to y carry 4/5 of the boundary."""
    pts = sampling.box_boundary(8000, ((0.0, 4.0), (0.0, 1.0)), _gen())
    on_y_face = ((pts[:, 1] == 0.0) | (pts[:, 1] == 1.0)).float().mean()
    assert abs(float(on_y_face) - 0.8) < 0.02
    upper = (pts[:, 1] == 1.0).float().sum() / ((pts[:, 1] == 0.0).float().sum())
    assert abs(float(upper) - 1.0) < 0.1


def test_box_boundary_dims():
    """Space-time walls: only the spatial dims are pinned, times stay uniform."""
    bounds = ((0.0, 1.0), (-1.0, 1.0), (-1.0, 1.0))  # (t, x, y)
    pts = sampling.box_boundary(2000, bounds, _gen(), dims=(1, 2))
    on_wall = (pts[:, 1:].abs() == 1.0).any(dim=1)
    assert on_wall.all()
    assert not ((pts[:, 0] == 0.0) | (pts[:, 0] == 1.0)).any()
    assert abs(float(pts[:, 0].mean()) - 0.5) < 0.03


def test_box_boundary_deterministic():
    a = sampling.box_boundary(100, BOUNDS, _gen(3))
    assert torch.equal(a, sampling.box_boundary(100, BOUNDS, _gen(3)))
    assert not torch.equal(a, sampling.box_boundary(100, BOUNDS, _gen(4)))


@pytest.mark.parametrize("center", [(0.5, -0.2), (0.0, 1.0, 2.0)])
def test_near_point(center):
    pts = sampling.near_point(3000, center, 0.1, _gen())
    assert pts.shape == (3000, len(center))
    r = (pts - torch.tensor(center)).norm(dim=1)
    assert (r <= 0.1 + 1e-6).all()
    # uniform in the ball: P(r < 0.1 * s) = s^d
    d = len(center)
    assert abs(float((r < 0.05).float().mean()) - 0.5**d) < 0.03
    assert torch.equal(pts, sampling.near_point(3000, center, 0.1, _gen()))


def test_zero_points():
    assert sampling.box(0, BOUNDS, _gen(), "sobol").shape == (0, 3)
    assert sampling.box(0, BOUNDS, _gen()).shape == (0, 3)


def test_bad_method_lists_valid():
    with pytest.raises(ValueError, match=r"Invalid sampling method \"halton\". Must be one of "
                                         r"\['uniform', 'sobol', 'lhs'\]"):
        sampling.box(10, BOUNDS, _gen(), "halton")


@pytest.mark.parametrize("fn", [lambda b: sampling.box(10, b, _gen()),
                                lambda b: sampling.box_boundary(10, b, _gen())])
def test_reversed_bounds(fn):
    with pytest.raises(ValueError, match=r"bounds\[1\] = \(0.0, -1.0\) is empty or reversed.*\(-1.0, 0.0\)"):
        fn(((0.0, 1.0), (0.0, -1.0)))


@pytest.mark.parametrize("bounds, match", [
    (((0.0, 0.0),), "empty or reversed"),
    (((0.0, math.inf),), "empty or reversed"),
    (((0.0, 1.0, 2.0),), r"must be a \(lo, hi\) pair"),
    ((), "bounds is empty"),
])
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        sampling.check_bounds(bounds)


def test_negative_n():
    with pytest.raises(ValueError, match="n must be >= 0"):
        sampling.unit_cube(-1, 2, _gen())
