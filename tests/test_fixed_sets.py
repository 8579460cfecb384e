"""Fixed point sets (Problem.fixed_sets, FixedSets): a paper's exact training points used
by every stage, recorded by their digest and checked by check_problem; and check_problem's
exact-solution tolerance relative to each term's scale, for problems with and without
constructor parameters."""
import math

import numpy as np
import pytest
import torch

from pinn_sine import sampling, train
from pinn_sine.checkpoint import CheckpointError
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.nets import MLP, Sine
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.problems import ConformanceError, FunctionNet, Problem, Term, check_problem
from pinn_sine.problems.base import FixedSets, fixed_sets_digest
from pinn_sine.train import load_checkpoint
from pinn_sine.validation import fd
from pinn_sine.optim.conformance import interrupting

# a paper's collocation points and source values, given as arrays (float64 here)
PAPER_X = np.linspace(0.05, 0.95, 19).reshape(-1, 1)


class FixedLine(Problem):
    """-u_xx = f on [0, 1] with u = amplitude sin(pi x): u(0) = u(1) = 0 and
    observations u_obs of u. The interior points and f are a paper's arrays (fixed,
    given); the observation points are one seeded draw (fixed, recorded); the boundary
    points are drawn afresh every time (a random mix of x = 0 and x = 1)."""

    name = "fixed-line-test"
    input_names = ("x",)
    bounds = ((0.0, 1.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "boundary": DerivativeSpec(),
                   "obs": DerivativeSpec()}
    bad_params = ({"amplitude": 0.0},)
    check_resolution = 9

    def __init__(self, amplitude: float = 1.0, *, obs_seed: int = 5):
        if not amplitude > 0:
            raise ValueError(f"amplitude must be > 0, got amplitude={amplitude}.")
        self.amplitude, self.obs_seed = float(amplitude), int(obs_seed)

    def exact(self, x):
        return self.amplitude * torch.sin(math.pi * x)

    def source(self, x):
        return self.amplitude * math.pi ** 2 * torch.sin(math.pi * x)

    def sample(self, n, generator, *, progress=1.0):
        xi, xo = sampling.box(n, self.bounds, generator), sampling.box(max(1, n // 2), self.bounds, generator)
        xb = torch.randint(0, 2, (max(1, n // 4), 1), generator=generator).float()
        return {"interior": xi, "f": self.source(xi.double()), "obs": xo, "u_obs": self.exact(xo.double()),
                "boundary": xb}

    def fixed_sets(self):
        x = torch.from_numpy(PAPER_X)
        given = FixedSets({"interior": x, "f": self.source(x)})
        return given | FixedSets.from_draw(self, 12, self.obs_seed, names=("obs",))  # u_obs comes along

    def terms(self):
        return (Term("pde", ("interior",), "pde", self.pde),
                Term("boundary", ("boundary",), "boundary", lambda jets, batch: jets["boundary"].u),
                Term("data", ("obs",), "data", self.data))

    def pde(self, jets, batch):
        u_xx = jets["interior"].d2("x", "x")
        return (u_xx + batch["f"].to(u_xx.dtype)) / math.pi ** 2

    def data(self, jets, batch):
        u = jets["obs"].u
        return u - batch["u_obs"].to(u.dtype)

    def params(self):
        return {"amplitude": self.amplitude, "obs_seed": self.obs_seed}

    def compute_reference(self, resolution):
        x = np.linspace(0.0, 1.0, resolution)
        return fd.FDSolution(coords={"x": x}, fields={"u": self.amplitude * np.sin(np.pi * x)}, solver="exact",
                             order=2, spacing={"x": x[1]}).to_reference()


def _net(problem, seed=0):
    return MLP(problem.in_dim, problem.out_dim, 8, 2, activation=Sine(), first_omega=2.0, seed=seed).double()


# ----- declaring, drawing, recording ----------------------------------------------------------
def test_fixed_sets_pass_check_problem_and_are_recorded():
    problem = FixedLine()
    checks = check_problem(problem)
    assert {"contract", "fixed_sets", "terms", "exact", "engines", "params", "reference", "bad_params"} <= set(checks)
    record = problem.params()["fixed_sets"]
    assert record["digest"] == fixed_sets_digest(problem) == fixed_sets_digest(problem.fixed_sets())
    assert record["sets"]["interior"] == {"shape": [19, 1], "dtype": "float64", "origin": "given"}
    assert record["sets"]["obs"]["origin"] == {"n": 12, "seed": 5, "progress": 1.0}
    assert record["sets"]["u_obs"]["shape"] == [6, 1]  # the data aligned with obs, fixed with it
    assert set(record["sets"]) == {"interior", "f", "obs", "u_obs"}
    # another seed of the drawn set is another digest; so is another given array
    assert FixedLine(obs_seed=6).params()["fixed_sets"]["digest"] != record["digest"]


def test_draw_puts_the_fixed_sets_in_place_of_the_sampled_ones():
    problem = FixedLine()
    a = problem.draw(40, torch.Generator().manual_seed(0))
    b = problem.draw(8, torch.Generator().manual_seed(1), progress=0.0)
    for key in ("interior", "f", "obs", "u_obs"):
        assert torch.equal(a[key], problem.fixed_sets()[key]) and torch.equal(a[key], b[key])
    assert a["interior"].dtype == torch.float64  # stored as given
    assert a["boundary"].shape == (10, 1) and b["boundary"].shape == (2, 1)  # n sizes what is not fixed
    a["interior"] += 1.0  # a draw is a copy: the fixed set stays as given
    assert torch.equal(problem.draw(4, torch.Generator())["interior"], torch.from_numpy(PAPER_X))


def test_digest_covers_names_dtypes_shapes_and_bytes():
    x = torch.linspace(0, 1, 5).reshape(-1, 1)
    base = fixed_sets_digest({"interior": x})
    assert fixed_sets_digest({"interior": x.clone()}) == base
    assert fixed_sets_digest({"interior": x.double()}) != base
    assert fixed_sets_digest({"points": x}) != base
    assert fixed_sets_digest({"interior": x.reshape(1, -1)}) != base
    moved = x.clone()
    moved[2] += 1e-7
    assert fixed_sets_digest({"interior": moved}) != base
    assert fixed_sets_digest(FixedSets({"interior": x.numpy()})) == base


# ----- every stage uses exactly the fixed points ----------------------------------------------
class Recording(FixedLine):
    """FixedLine that keeps every interior and obs batch its residuals read."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen = {"interior": [], "obs": [], "boundary": []}

    def pde(self, jets, batch):
        self.seen["interior"].append(batch["interior"].detach().clone())
        self.seen["boundary"].append(batch["boundary"].detach().clone())
        return super().pde(jets, batch)

    def data(self, jets, batch):
        self.seen["obs"].append(batch["obs"].detach().clone())
        return super().data(jets, batch)


def test_adam_lbfgs_and_gauss_newton_use_exactly_the_fixed_points():
    problem = Recording()
    stages = [Adam(5, lr=1e-2, resample_every=1), LBFGS(6, chunk=3),
              GaussNewton(4, batch=16, resample_every=2)]
    train(problem, _net(problem), stages=stages, batch=32, seed=0, progress=False, log_every=1)
    fixed = problem.fixed_sets()
    for key in ("interior", "obs"):
        assert len(problem.seen[key]) > 20
        assert all(torch.equal(x, fixed[key]) for x in problem.seen[key]), key
    # the sets that are not fixed are drawn afresh, sized by the batch of each stage
    assert len({tuple(b.flatten().tolist()) for b in problem.seen["boundary"]}) > 2
    assert {b.shape[0] for b in problem.seen["boundary"]} == {8, 4}  # batch 32 (Adam, L-BFGS), 16 (GN)
    for stage in stages[1:]:  # L-BFGS and Gauss-Newton hold the batch they step on
        assert torch.equal(stage.points["interior"], fixed["interior"])
        assert torch.equal(stage.points["u_obs"], fixed["u_obs"])


_Killed = interrupting(FixedLine, "pde")


def _stages():
    return [Adam(6, lr=1e-2), LBFGS(12, chunk=3), GaussNewton(6, batch=16)]


@pytest.mark.parametrize("stop_after, phase", [(6, "adam"), (20, "lbfgs"), (30, "gauss_newton")])
def test_resume_is_bit_identical(tmp_path, stop_after, phase):
    kw = dict(batch=32, seed=0, progress=False, log_every=1, checkpoint_every=2)
    full = _net(FixedLine())
    r_full = train(FixedLine(), full, stages=_stages(), **kw)

    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_Killed(stop_after), _net(FixedLine()), stages=_stages(), checkpoint=ck, **kw)
    saved = load_checkpoint(ck)
    assert saved["meta"]["phase"] == phase, saved["meta"]["phase"]
    assert saved["meta"]["problem_params"]["fixed_sets"] == FixedLine().params()["fixed_sets"]

    resumed = _net(FixedLine(), seed=7)
    r_res = train(FixedLine(), resumed, stages=_stages(), resume=ck, checkpoint=ck, **kw)
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    drop = ("time", "step_time")
    assert [{k: v for k, v in row.items() if k not in drop} for row in r_res.history] == \
           [{k: v for k, v in row.items() if k not in drop} for row in r_full.history]


def test_resume_with_other_fixed_points_is_refused(tmp_path):
    ck = tmp_path / "ck.pt"
    train(FixedLine(), _net(FixedLine()), stages=[Adam(2)], batch=16, progress=False, checkpoint=ck)
    with pytest.raises(CheckpointError, match="problem parameter fixed_sets"):
        train(FixedLine(obs_seed=6), _net(FixedLine()), stages=[Adam(4)], batch=16, progress=False, resume=ck)


# ----- wrong declarations ---------------------------------------------------------------------
def _declaring(sets_fn, name):
    return type(name, (FixedLine,), {"name": name, "fixed_sets": lambda self: sets_fn(self)})()


@pytest.mark.parametrize("sets, match", [
    (lambda p: {"interior": torch.from_numpy(PAPER_X), "f": p.source(torch.from_numpy(PAPER_X)),
                "colloc": torch.rand(4, 1)},
     r"fixed set 'colloc' is not a point set of derivatives .* nor data aligned with a fixed point set"),
    (lambda p: {"interior": torch.rand(5, 2), "f": torch.zeros(5, 1)},
     r"fixed point set 'interior' has shape \(5, 2\), expected \(n, 1\)"),
    (lambda p: {"interior": torch.tensor([[0.5], [1.5]]), "f": torch.zeros(2, 1)},
     r"fixed point set 'interior' has 1 points outside the bounds of 'x' \(0, 1\), e.g. point 1 with x = 1.5"),
    (lambda p: {"interior": torch.tensor([[0.5], [float("nan")]]), "f": torch.zeros(2, 1)},
     r"fixed set 'interior' has 1 rows with NaN or infinite values"),
    (lambda p: {"interior": torch.tensor([[0.5]]), "f": torch.tensor([[float("inf")]])},
     r"fixed set 'f' has 1 rows with NaN or infinite values"),
    (lambda p: {"interior": torch.from_numpy(PAPER_X)},  # its source f is still drawn at other points
     r"the data entry 'f' is drawn by sample\(\) with the points of \['interior'\], which fixed_sets\(\) "
     r"replaces; fix 'f' too"),
    (lambda p: {"interior": torch.rand(4, 1), "f": torch.zeros(4, 1)},  # the global generator: not stable
     r"fixed_sets\(\) is not stable"),
    (lambda p: {"interior": [[0.5]]}, r"fixed set 'interior' is a list; give a tensor or a NumPy array"),
], ids=["not-in-derivatives", "shape", "outside-bounds", "nan", "inf-data", "data-not-fixed", "unstable", "type"])
def test_wrong_declarations_are_refused(sets, match):
    with pytest.raises(ConformanceError, match=match):
        check_problem(_declaring(sets, "wrong-fixed"))


def test_float32_coordinates_on_the_bounds_are_inside():
    x = torch.tensor([[0.0], [0.1], [1.0 + 1e-9]])  # a paper's float32 points, rounded at the edge
    problem = _declaring(lambda p: {"interior": x, "f": p.source(x.double())}, "edge-fixed")
    assert "fixed_sets" in check_problem(problem)


def test_from_draw_refuses_ambiguous_data_and_unknown_names():
    class Even(FixedLine):
        name = "even-fixed"

        def sample(self, n, generator, *, progress=1.0):
            b = super().sample(n, generator, progress=progress)
            return {**b, "obs": b["obs"][:1], "u_obs": b["u_obs"][:1], "boundary": b["boundary"][:1]}

    with pytest.raises(ValueError, match=r"the data entry 'u_obs' has 1 rows, as many as the point sets"):
        FixedSets.from_draw(Even(), 8, 0, names=("obs",))
    with pytest.raises(ValueError, match=r"draws .*, not \['nowhere'\]"):
        FixedSets.from_draw(FixedLine(), 8, 0, names=("nowhere",))
    fixed = FixedSets.from_draw(Even(), 8, 0, names=("obs", "u_obs"))  # named: taken as given
    assert sorted(fixed) == ["obs", "u_obs"]
    with pytest.raises(ValueError, match=r"\['obs'\] are fixed twice"):
        fixed | {"obs": torch.zeros(1, 1)}


# ----- the exact tolerance is relative; a problem without parameters -------------------------
class ScaledLine(FixedLine):
    """FixedLine at amplitude 1e4 (loss terms of order 1e8), the paper's f given in float32."""

    name = "scaled-line-test"

    def __init__(self, amplitude: float = 1e4):
        super().__init__(amplitude)

    def fixed_sets(self):
        x = torch.from_numpy(PAPER_X).float()
        return {"interior": x, "f": self.source(x.double()).float()}


def test_exact_tolerance_is_relative_to_the_term_scale():
    problem = ScaledLine()
    batch = {k: v.double() for k, v in problem.draw(64, torch.Generator().manual_seed(0)).items()}
    exact = problem.compute_losses(FunctionNet(problem.exact), batch, engine="autograd")
    zero = problem.compute_losses(FunctionNet(lambda x: 0.0 * x), batch, engine="autograd")
    assert float(zero["pde"].detach()) > 1e7  # the term's scale
    assert float(exact["pde"].detach()) > 1e-12  # what the absolute tolerance before refused: float32 data at 1e4
    assert "exact" in check_problem(problem)

    class Wrong(ScaledLine):  # a relative error of 1e-5 in the solution is still caught
        name = "scaled-wrong"

        def exact(self, x):
            return super().exact(x) * (1 + 1e-5)

    with pytest.raises(ConformanceError, match=r"the exact solution has loss terms \{'pde'"):
        check_problem(Wrong())


class Benchmark(Problem):
    """A fixed benchmark case with no constructor parameters and no sampler: u = x^2 on
    [0, 1] from u'' = 2, u(0) = 0, u(1) = 1, on the paper's points."""

    name = "benchmark-test"
    input_names = ("x",)
    bounds = ((0.0, 1.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "boundary": DerivativeSpec()}
    check_resolution = 9

    def fixed_sets(self):
        return {"interior": torch.from_numpy(PAPER_X), "boundary": torch.tensor([[0.0], [1.0]], dtype=torch.float64),
                "g": torch.tensor([[0.0], [1.0]], dtype=torch.float64)}

    def exact(self, x):
        return x ** 2

    def terms(self):
        return (Term("pde", ("interior",), "pde", lambda jets, batch: jets["interior"].d2("x", "x") - 2.0),
                Term("boundary", ("boundary",), "boundary",
                     lambda jets, batch: jets["boundary"].u - batch["g"].to(jets["boundary"].u.dtype)))

    def params(self):
        return {}

    def compute_reference(self, resolution):
        x = np.linspace(0.0, 1.0, resolution)
        return fd.FDSolution(coords={"x": x}, fields={"u": x ** 2}, solver="exact", order=2,
                             spacing={"x": x[1]}).to_reference()


def test_parameterless_problem_with_every_set_fixed_passes():
    problem = Benchmark()
    checks = check_problem(problem)
    assert "bad_params" not in checks and {"fixed_sets", "exact", "reference"} <= set(checks)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    a, b = problem.draw(4, gen), problem.draw(400, gen)  # n is ignored, nothing is drawn
    assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(gen.get_state(), state)
    result = train(problem, _net(problem), stages=[Adam(3, lr=1e-2), GaussNewton(2)], batch=8, progress=False)
    assert len(result.history) > 0


def test_a_problem_with_parameters_still_lists_bad_params():
    class Unlisted(FixedLine):
        name = "unlisted-fixed"
        bad_params = ()

    with pytest.raises(ConformanceError, match=r"bad_params is empty, but its constructor takes \['amplitude', "
                                               r"'obs_seed'\]"):
        check_problem(Unlisted())


def test_some_sets_fixed_without_a_sampler_is_refused_at_draw():
    class Partial(Benchmark):
        name = "partial-fixed"

        def fixed_sets(self):
            return {"interior": torch.from_numpy(PAPER_X)}

    with pytest.raises(NotImplementedError, match=r"fixes only \['interior'\] and has no sample\(\) for its other "
                                                  r"point sets \['boundary'\]"):
        Partial().draw(8, torch.Generator())


def test_the_repr_of_fixed_sets_is_short():
    text = repr(FixedLine())
    assert "fixed_sets=<f: 19, interior: 19, obs: 6, u_obs: 6; sha256 " in text
    assert len(text) < 200 and "origin" not in text


def test_rad_on_a_fixed_point_set_warns():
    from pinn_sine.adaptive import RADSampler

    class Pointwise(FixedLine):
        name = "fixed-line-pointwise-test"

        def pointwise_residual(self, jets, batch):
            return self.pde(jets, batch)[:, 0] ** 2

    with pytest.warns(RuntimeWarning, match="'interior' is fixed .* RAD only redraws among them"):
        RADSampler().check(Pointwise())
