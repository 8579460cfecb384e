"""Optimizer stages for :func:`pinn_sine.train`: ``train(problem, net, stages=[Adam(3000),
LBFGS(500)])`` or ``[Adam(1000), GaussNewton(500)]``; see :mod:`pinn_sine.optim.stages`
for the protocol a new stage follows."""
from .conformance import STAGE_CASES, StageConformanceError, check_stage
from .descents import DESCENTS, Dense, Descent, Direction, Dual, NormalCG, Sketched
from .gauss_newton import GaussNewton
from .searches import SEARCHES, Backtracking, Model, Nielsen, Search, SearchResult, TrustRegion
from .solvers import SOLVERS, CG, Cholesky, LinearSolver
from .stages import SCHEDULES, LBFGS, Adam, Stage, StepResult
from .spec import STAGES, parse_stage_spec, stage_from_description

__all__ = ["Stage", "StepResult", "Adam", "LBFGS", "GaussNewton", "SCHEDULES", "STAGES", "parse_stage_spec",
           "stage_from_description", "check_stage", "STAGE_CASES", "StageConformanceError",
           "Search", "SearchResult", "Model", "Nielsen", "TrustRegion", "Backtracking", "SEARCHES",
           "Descent", "Direction", "Dense", "NormalCG", "Dual", "Sketched", "DESCENTS",
           "LinearSolver", "Cholesky", "CG", "SOLVERS"]
