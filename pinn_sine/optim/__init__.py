"""Optimizer stages for :func:`pinn_sine.train`: ``train(problem, net, stages=[Adam(3000),
LBFGS(500)])`` or ``[Adam(1000), GaussNewton(500)]``; see :mod:`pinn_sine.optim.stages`
for the protocol a new stage follows."""
from .gauss_newton import GaussNewton
from .stages import SCHEDULES, LBFGS, Adam, Stage, StepResult
from .spec import STAGES, parse_stage_spec, stage_from_description

__all__ = ["Stage", "StepResult", "Adam", "LBFGS", "GaussNewton", "SCHEDULES", "STAGES", "parse_stage_spec",
           "stage_from_description"]
