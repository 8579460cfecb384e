"""The Gauss-Newton (Levenberg-Marquardt) stage: second-order training for
least-squares PINN losses.

The training loss is L(theta) = sum_k w_k mean_i |r_{k,i}(theta)|^2 = ||r(theta)||^2 for
the stacked, weighted residual vector r (N entries: one per point, term and output
column; :func:`~pinn_sine.derivatives.jacobian.residual_jacobian`). Gauss-Newton
linearises r around theta, r(theta + d) ~ r + J d, and solves the damped normal
equations

    (J^T J + lambda I) d = -J^T r                         (primal, p x p)
    d = -J^T (J J^T + lambda I)^{-1} r                    (dual, N x N; the same d)

by Cholesky, whichever system is smaller. With the weights and the means folded into
r this is the energy natural gradient (ENGD, Mueller & Zeinhofer 2023) for these
losses; the damping makes it Levenberg-Marquardt. lambda = mu ||J||_F^2 / p, mu
adapted by the gain ratio

    rho = (L(theta) - L(theta + d)) / (L(theta) - ||r + J d||^2)

(actual over predicted decrease, Nielsen 1999): a step with rho > 0 is accepted and mu
shrinks by max(1/3, 1 - (2 rho - 1)^3); otherwise the step is undone and mu grows by a
factor nu that doubles after each consecutive rejection.

Use float64 (``net.double()``): in float32 the normal equations lose about half the
digits and the stage stalls near 1e-4 relative error.

The stage is composed of three parts, each a small class chosen by name or given as an
object (``GaussNewton(300, descent="cg")``, ``descent={"name": "cg", "rank": 100}`` or
``descent=NormalCG(rank=100)``):

* a **search** (:mod:`~pinn_sine.optim.searches`): the damping and whether and how far
  the step is taken: "nielsen" (the rule above, the default), "trust_region",
  "backtracking";
* a **descent** (:mod:`~pinn_sine.optim.descents`): the step from the
  :class:`~pinn_sine.derivatives.Linearization` (r and J as an operator): "dense" (J
  formed, the system above, the default), "cg" (matrix-free, preconditioned conjugate
  gradients), "dual" (J J^T from the factors; SPRING momentum), "sketched" (rows and
  columns sampled);
* a **linear solver** (:mod:`~pinn_sine.optim.solvers`): "cholesky" (LAPACK on the CPU,
  torch elsewhere, chosen once when the stage starts) or "cg"; "auto" takes the
  descent's own.

Under ``torchrun`` each process (rank) linearizes its own share of the batch (its rows
of r and J, :class:`~pinn_sine.derivatives.linearization.RankLinearization`) and every
rank takes the step a single process takes on the union of the points: with equal
shares the loss is the mean of the ranks' losses, so each rank's rows are scaled by
1/sqrt(W) (the term weights divided by the number of ranks W), and then ||r||^2, J^T J,
J^T r and the search's r.Jd and ||Jd||^2 are sums over the ranks (all-reduced), the
trial losses are the all-rank loss, and the step d, computed from these sums alike on
every rank, is the same on all. The descents "dense" (always the primal p x p system
there) and "cg" run so; "dual" and "sketched" refuse (their N x N Gram matrix or row
sample spans the ranks).

Adaptive sampling (``adaptive="rad"`` with ``resample_every``): every ``resample_every``
steps the batch is redrawn with its interior points drawn from a pool of candidates by
their residual (RAD, :class:`~pinn_sine.adaptive.RADSampler`: p(x) ∝ |r(x)|^k /
mean |r|^k + c, Wu et al. 2023). The batch keeps its size, so the step's cost and the
memory checked at ``start`` stay what they were; a redraw leaves the search's damping
as it is (the network has not moved, only the points), and the history's "redraws"
column counts the redraws. On Burgers (``benchmarks/burgers.py``) a fixed uniform batch
is the limit, not the optimizer: the shock holds a handful of its points, the loss on
them reaches 1e-10 and the error stays near 1e-2 (2048 interior points; 2e-4 with 8192),
where redraws by the residual end at 1.3e-5 to 3.5e-5 with 2048 (README, 600 s). RAD rather
than adding points (RAR): the batch, and so the step's cost, stays fixed, and c > 0
keeps every region sampled.

``GaussNewton(steps)`` is the dense Levenberg-Marquardt stage it always was. Writing a
part: subclass the part's base class, implement its few methods (each module's
docstring lists them) and pass an instance; its ``describe()`` names it in the
checkpoint and config.json, and registering the class in ``SEARCHES``/``DESCENTS``/
``SOLVERS`` makes the name usable on the command line.
"""
from __future__ import annotations

import math
import time
import warnings

import torch
from torch import Tensor

from .. import distributed
from ..adaptive import RADSampler
from ..derivatives.linearization import fitted_parameters, linearize, linearize_ranks
from .descents import DESCENTS, Descent
from .searches import SEARCHES, Model, Search
from .solvers import SOLVERS, LinearSolver, damped_solve_lapack, damped_solve_torch
from .stages import Stage, StepResult, check_batch, check_every, check_positive_float, check_steps

# the dense solves under their former names (tests and benchmarks import them from here)
_damped_solve_lapack, _damped_solve_torch = damped_solve_lapack, damped_solve_torch


def make_part(kind: str, value, registry: dict, base: type):
    """A search, descent or solver from a name, a dict {"name": ..., option: value} (its
    ``describe()``) or an instance of ``base``."""
    if isinstance(value, base):
        return value
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        name, options = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise ValueError(f"GaussNewton: {kind} must be one of {sorted(registry)}, a dict with a \"name\" among them "
                         f"and its options, or a {base.__name__}; got {value!r}.")
    if name not in registry:
        raise ValueError(f'GaussNewton: unknown {kind} "{name}". Must be one of {sorted(registry)}.')
    cls = registry[name]
    try:
        return cls(**options)
    except TypeError as err:
        import inspect

        accepted = [p for p in inspect.signature(cls).parameters]
        raise ValueError(f"GaussNewton: {kind} {name!r} takes the options {accepted}; got {sorted(options)} "
                         f"({err}).") from None


class GaussNewton(Stage):
    """Gauss-Newton (Levenberg-Marquardt by default) steps on a fixed batch, composed of
    a search, a descent and a linear solver (module docstring).

    Args:
        steps: Gauss-Newton steps (>= 0); a rejected step counts as a step.
        batch: interior points of the batch (None: the run's batch). The other point
            sets are sized from it by the problem, as for every stage.
        damping: shorthand for the search's initial relative damping (the Nielsen
            search's mu, default 1e-3).
        line_search: shorthand for ``Nielsen(line_search=...)``: after a rejected step,
            try d/2, d/4, ... (at most 8 halvings) and accept the first that lowers the loss.
        resample_every: draw a fresh batch every this many steps (None: one batch).
        adaptive: None (uniform batches), "rad", a dict {"name": "rad", option: value}
            (:class:`~pinn_sine.adaptive.RADSampler`'s options: pool, k, c,
            refresh_every, pool_factor, point_set) or a RADSampler: the interior points
            of the first batch and of every redraw (``resample_every``, required) come
            from a pool drawn by the residual (module docstring). Here ``refresh_every``
            counts redraws (default 1: a fresh pool, with fresh residuals, at each).
        max_memory: bytes a step may take (default 4 GiB): the descent's estimate (J and
            the system for "dense"; the Jacobian factors and its vectors for the others)
            is checked before the stage starts, which refuses and says what to change.
        search: "nielsen" (default), "trust_region", "backtracking", a dict or a Search.
        descent: "dense" (default), "cg", "dual", "sketched", a dict or a Descent
            (under torchrun: "dense" or "cg"; module docstring).
        solver: "auto" (the descent's), "cholesky", "cg", a dict or a LinearSolver.

    Under torchrun ``batch`` is the global batch (each rank draws an equal share) and
    ``max_memory`` bounds each process's share of the step (its own rows).
    """

    name = "gauss_newton"
    evaluate_each_log = True

    def __init__(self, steps: int, *, batch: int | None = None, damping: float | None = None,
                 line_search: bool | None = None, resample_every: int | None = None,
                 max_memory: float = 4 * 2**30, search="nielsen", descent="dense", solver="auto", adaptive=None):
        self.steps = check_steps(steps, "GaussNewton")
        self.batch = check_batch(batch, "GaussNewton")
        self.resample_every = None if resample_every is None else check_every(resample_every, "resample_every",
                                                                                "GaussNewton")
        self.max_memory = check_positive_float(max_memory, "max_memory", "GaussNewton")
        if damping is not None:
            damping = check_positive_float(damping, "damping", "GaussNewton")
        if line_search is not None and not isinstance(line_search, bool):
            raise ValueError(f"GaussNewton: line_search must be True or False, got {line_search!r}.")
        if isinstance(search, str) and (damping is not None or line_search is not None):
            options = {} if damping is None else {"damping": damping}
            if line_search is not None:
                if search != "nielsen":
                    raise ValueError(f"GaussNewton: line_search is an option of the nielsen search, not of {search!r}.")
                options["line_search"] = line_search
            search = {"name": search, **options}
        elif damping is not None or line_search is not None:
            raise ValueError("GaussNewton: give damping/line_search inside the search (search={\"name\": ..., "
                             "\"damping\": ...}), not beside a configured search.")
        self.search: Search = make_part("search", search, SEARCHES, Search)
        self.descent: Descent = make_part("descent", descent, DESCENTS, Descent)
        solver = self.descent.default_solver if solver == "auto" else solver
        self.solver: LinearSolver = make_part("solver", solver, SOLVERS, LinearSolver)
        if self.solver.name not in self.descent.solvers:
            raise ValueError(f"GaussNewton: the {self.descent.name} descent works with the solvers "
                             f"{list(self.descent.solvers)}, not {self.solver.name!r}"
                             + (" (it never forms a matrix to factor)." if self.descent.solvers == ("cg",) else "."))
        self.adaptive: RADSampler | None = _adaptive_sampler(adaptive)
        if self.adaptive is not None and self.resample_every is None:
            raise ValueError("GaussNewton: adaptive sampling redraws the batch every resample_every steps; give "
                             "resample_every too, e.g. GaussNewton(..., adaptive=\"rad\", resample_every=20).")
        self.redraws = 0
        self.points = None
        self.generator = None
        self.sketch_generator = None
        self.ctx = None
        self.params: list[Tensor] = []

    @property
    def damping(self) -> float:
        """The search's initial relative damping."""
        return self.search.damping0

    # ----- set-up ---------------------------------------------------------------------
    def start(self, run, index: int) -> None:
        self.ctx = run.ctx
        if run.ctx.active:
            try:
                self.descent.split_rows()
            except ValueError as err:
                raise ValueError(f"GaussNewton under torchrun ({run.ctx.world_size} processes): {err}") from None
        if run.causal is not None:
            raise ValueError("GaussNewton minimises the plain weighted least-squares loss; causal weighting is not "
                             "a least-squares term. Train without causal=, or use Adam / L-BFGS with it.")
        if not run.problem.has_residuals:
            raise ValueError(f"GaussNewton needs the loss terms as per-point residuals; "
                             f"{type(run.problem).__name__} does not define residuals() (its loss is not a plain "
                             "least-squares sum). Use Adam / L-BFGS for it.")
        self.params = fitted_parameters(run.problem, run.net)
        if self.params[0].dtype != torch.float64:
            warnings.warn("GaussNewton in float32 stalls near 1e-4 relative error (the normal equations square the "
                          "condition number); train a float64 network: net.double() in Python, --dtype float64 on the "
                          "command line.", RuntimeWarning, stacklevel=3)
        self.generator = run.stage_generator(index)
        self.points = run.fixed_batch(self.batch, index, generator=self.generator)
        self.redraws = 0
        if self.adaptive is not None:
            self.adaptive.check(run.problem)
            self.adaptive.pool, self.adaptive.probs, self.adaptive.refreshes = None, None, 0
            self.points = self._adaptive_draw(run, self.points)
        self.solver.prepare(self.params[0].device)
        # the descent's sketches: from the stage's generator in one process (as ever); under
        # torchrun, whose stage generators are seeded per rank, from one seeded alike on all
        self.sketch_generator = (torch.Generator().manual_seed(distributed.shared_seed(run.seed + index))
                                 if run.ctx.active else self.generator)
        self.descent.start(self.sketch_generator)
        self._check_memory(run)

    def _check_memory(self, run) -> None:
        """The descent's estimate for this process's rows (its share under torchrun)."""
        from ..constraints import unconstrained

        p = sum(q.numel() for q in self.params)
        problem = run.problem
        n = sum(v.shape[0] for k, v in self.points.items() if k in problem.derivatives)
        rows = n * max(problem.out_dim, 1)
        layers = unconstrained(run.net).linears
        width = max(layer.weight.shape[0] * layer.weight.shape[1] for layer in layers)
        streams = max((1 + len(s.directions()) + len(s.pairs()) + len(s.laplacian_groups())
                       for s in problem.derivatives.values()), default=1)
        item = self.params[0].element_size()
        factors = item * rows * streams * sum(l.weight.shape[0] + l.weight.shape[1] + 1 for l in layers)
        # the step's own memory, and one layer's per-point weight gradients
        need = self.descent.memory(rows, p, factors, item) + item * n * width
        if need > self.max_memory:
            raise MemoryError(
                f"GaussNewton ({self.descent.name} descent): about {rows} residuals x {p} parameters need about "
                f"{need / 2**30:.2f} GiB, over max_memory={self.max_memory / 2**30:.2f} GiB. Use a smaller batch "
                "(GaussNewton(batch=...)) or a smaller network, a matrix-free descent (descent=\"cg\"), or raise "
                "max_memory.")

    # ----- one step -------------------------------------------------------------------
    def step(self, run, done: int) -> StepResult:
        t0 = time.perf_counter()
        if self.resample_every is not None and done and done % self.resample_every == 0:
            self.points = run.fixed_batch(self.batch, None, generator=self.generator)
            if self.adaptive is not None:
                self.points = self._adaptive_draw(run, self.points)
                self.redraws += 1
                run.reset_growth()  # another batch: its loss is not comparable with the last one's
        if self.ctx.active:  # this rank's rows, scaled so that sums over ranks are the union's
            lin = linearize_ranks(run.problem, run.net, self.points, run.term_weights, self.ctx.world_size)
        else:
            lin = linearize(run.problem, run.net, self.points, run.term_weights)
        loss = float(lin.sum_over_ranks(lin.r @ lin.r))
        if not math.isfinite(loss):
            total, terms, _ = run.weighted(self.points, None, evaluation=True)
            run.check_finite(run.offset + done, self.name, total, terms)
        scale = self.descent.frobenius2(lin) / lin.n_cols
        direction = self.descent.direction(lin, self.search.damping(scale), self.solver)
        d = direction.d
        before = [q.detach().clone() for q in self.params]
        last = {}

        def trial(alpha: float) -> float:
            self._set(before, d, alpha)
            with torch.no_grad():
                last["eval"] = run.weighted(self.points, None, evaluation=True)
            return float(run.global_total(last["eval"][0]))

        Jd = direction.Jd
        rJd, JdJd = lin.sum_over_ranks(torch.stack([lin.r @ Jd, Jd @ Jd])).tolist()
        model = Model(rJd, JdJd, float(d.norm()))  # d is the same on every rank
        result = self.search.run(trial, loss, model)
        if not result.accepted:
            self._set(before, None, 0.0)
            with torch.no_grad():
                last["eval"] = run.weighted(self.points, None, evaluation=True)
        self.descent.update(result.accepted, result.alpha)
        total, terms, loss_terms = last["eval"]
        run.check_finite(run.offset + done + 1, self.name, total, terms)
        # lambda: the damping this step used; mu / radius: the search's state for the next one.
        extra = {"lambda": direction.lam, **{k: v for k, v in result.extra.items() if k != "alpha"},
                 "gain": result.gain, "accepted": int(result.accepted), **direction.info,
                 "step_time": time.perf_counter() - t0}
        if "alpha" in result.extra:
            extra["alpha"] = result.extra["alpha"]
        if self.adaptive is not None:
            extra["redraws"] = self.redraws
        return StepResult(1, total, terms, loss_terms, extra)

    def _adaptive_draw(self, run, points: dict[str, Tensor]) -> dict[str, Tensor]:
        """``points`` with the interior drawn by the residual from the pool (a fresh pool
        when due: ``refresh_every`` counts redraws)."""
        sampler = self.adaptive
        if sampler.due(self.redraws):
            sampler.refresh(run.problem, run.net, run.engine, points[sampler.point_set].shape[0], self.generator,
                            to_dev=run.to_dev)
        return sampler.draw(run.problem, points, self.generator, run.to_dev)

    @torch.no_grad()
    def _set(self, base: list[Tensor], d: Tensor | None, alpha: float) -> None:
        k = 0
        for q, q0 in zip(self.params, base):
            m = q.numel()
            q.copy_(q0 if d is None else q0 + alpha * d[k:k + m].view_as(q))
            k += m

    # ----- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The search's and the descent's state, the generator and the points; under
        torchrun (a collective call: every rank calls it, as :func:`~pinn_sine.train.train`
        does) each rank's generator and points under "ranks", and the shared sketch
        generator."""
        mine = {"generator": self.generator.get_state(),
                "points": {k: v.detach().cpu() for k, v in self.points.items()}}
        if self.adaptive is not None:
            mine.update(adaptive=self.adaptive.state_dict(), redraws=self.redraws)
        if self.ctx is not None and self.ctx.active:
            mine = {"ranks": distributed.all_gather_objects(mine),
                    "sketch_generator": self.sketch_generator.get_state()}
        return {**self.search.state_dict(), **mine, "descent": self.descent.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.search.load_state_dict(state)
        ranks = state.get("ranks")
        world = self.ctx.world_size if self.ctx is not None else 1
        if (ranks is not None and len(ranks) != world) or (ranks is None and world > 1):
            raise ValueError(f"GaussNewton: the state was saved by {1 if ranks is None else len(ranks)} "
                             f"process(es); this run has {world}. Resume with as many processes.")
        if ranks is not None:
            self.sketch_generator.set_state(state["sketch_generator"])
            state = {**state, **ranks[self.ctx.rank]}
        self.generator.set_state(state["generator"])
        dtype, device = self.params[0].dtype, self.params[0].device
        self.points = {k: v.to(device=device, dtype=dtype) for k, v in state["points"].items()}
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state["adaptive"])
            self.redraws = int(state["redraws"])
        self.descent.load_state_dict({k: (v.to(device=device, dtype=dtype) if isinstance(v, Tensor) else v)
                                      for k, v in state.get("descent", {}).items()})

    def describe(self) -> dict:
        out = {"stage": self.name, "steps": self.steps, "batch": self.batch, "resample_every": self.resample_every,
               "max_memory": self.max_memory, "search": self.search.describe(),
               "descent": self.descent.describe(), "solver": self.solver.describe()}
        if self.adaptive is not None:  # only then: the descriptions of earlier runs stay as they were
            out["adaptive"] = {"name": "rad", **{k: v for k, v in self.adaptive.describe().items() if k != "type"}}
        return out


def _adaptive_sampler(value) -> RADSampler | None:
    """The stage's sampler from None, "rad", {"name": "rad", option: value} or a RADSampler
    (its ``refresh_every`` defaults to 1 here: a fresh pool at every redraw)."""
    if value is None or isinstance(value, RADSampler):
        return value
    if value == "rad":
        return RADSampler(refresh_every=1)
    if isinstance(value, dict) and value.get("name") == "rad":
        options = {"refresh_every": 1, **{k: v for k, v in value.items() if k != "name"}}
        try:
            return RADSampler(**options)
        except TypeError as err:
            raise ValueError(f"GaussNewton: adaptive \"rad\" takes the options pool, k, c, refresh_every, "
                             f"pool_factor, point_set; got {sorted(options)} ({err}).") from None
    raise ValueError(f'GaussNewton: adaptive must be None, "rad", a dict {{"name": "rad", ...}} with RADSampler\'s '
                     f"options or a RADSampler; got {value!r}.")

