"""A table of bad inputs, through the Python API and the command line: each is rejected
early with a message naming the argument (or option), its value and what is valid."""
from __future__ import annotations

import math
import re

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from pinn_sine import evaluate, sampling, train
from pinn_sine.cli import main
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.derivatives.autograd import autograd_jet
from pinn_sine.derivatives.forward import forward_jet
from pinn_sine.nets import MLP, Finer, FourierFeatures, MetaSin, Sine, build_net
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.adaptive import RADSampler
from pinn_sine.compare import compare
from pinn_sine.problems import Helmholtz2D, HelmholtzPointSource, Inpainting, Poisson2D, Wave1D, Wave2D
from pinn_sine.problems.registry import register_problem
from pinn_sine.validation import ReferenceField
from pinn_sine.weighting import CausalWeights, GradNormWeights


def _net(**kw):
    return MLP(2, 1, width=4, depth=1, activation=Sine(4.0), **kw)


def _train(**kw):
    return lambda: train(Poisson2D(), kw.pop("net", None) or _net(), **{"steps": 1, "progress": False, **kw})


def _trained():
    net = _net()
    train(Poisson2D(), net, steps=1, progress=False)
    return net


def _field(u, mask=None):
    return lambda: ReferenceField(problem="poisson2d", params={}, coords={"x": np.arange(3.0), "y": np.arange(3.0)},
                                  fields={"u": u}, solver="test", order=2, spacing=(1.0, 1.0), mask=mask)


def _grid_field(mask=None):
    """A 3 x 3 Poisson2D-shaped field on [-1, 1]^2 (u = x + 2), optionally masked."""
    x = np.linspace(-1.0, 1.0, 3)
    return ReferenceField(problem="poisson2d", params={}, coords={"x": x, "y": x},
                          fields={"u": np.add.outer(x, 0 * x) + 2.0}, solver="test", order=2, spacing=(1.0, 1.0),
                          mask=mask)


def _nan_net():
    net = _net()
    with torch.no_grad():
        net.linears[-1].bias.fill_(float("nan"))
    return net


def _with_nans(k):
    u = _grid_field().fields["u"].copy()
    u.flat[:k] = np.nan
    return {"u": u}


def _named_problem(name):
    return lambda: register_problem(type("Named", (Poisson2D,), {"name": name}))


# (id, call, exception, message pattern)
API = [
    ("reference-resolution-float", lambda: Poisson2D().reference(resolution=17.9), ValueError,
     r"resolution must be an integer >= 3 .* got resolution=17\.9"),
    ("reference-resolution-bool", lambda: Poisson2D().reference(resolution=True), ValueError,
     r"resolution must be an integer >= 3 .* got resolution=True"),
    ("reference-resolution-small", lambda: Poisson2D().reference(resolution=2), ValueError,
     r"resolution must be >= 3, got 2"),
    ("train-batch-float", _train(batch=2.7), ValueError, r"batch must be an integer >= 1 .* got batch=2\.7"),
    ("train-batch-zero", _train(batch=0), ValueError, r"batch must be an integer >= 1 .* got batch=0"),
    ("train-batch-negative", _train(batch=-3), ValueError, r"batch must be an integer >= 1 .* got batch=-3"),
    ("train-batch-bool", _train(batch=True), ValueError, r"batch must be an integer >= 1 .* got batch=True"),
    ("train-seed-float", _train(seed=1.5), ValueError, r"seed must be an integer, got seed=1\.5"),
    ("train-steps-negative", _train(steps=-1), ValueError, r"steps must be an integer >= 0, got steps=-1"),
    ("train-lbfgs-steps-float", _train(lbfgs_steps=1.5), ValueError, r"lbfgs_steps must be an integer >= 0"),
    ("train-eval-every-zero", _train(eval_every=0), ValueError,
     r"eval_every must be an integer >= 1, got eval_every=0"),
    ("train-log-every-float", _train(log_every=2.5), ValueError, r"log_every must be an integer >= 1"),
    ("train-time-limit-nan", _train(time_limit=float("nan")), ValueError, r"time_limit must be > 0 seconds, got nan"),
    ("train-divergence-one", _train(divergence=1.0), ValueError, r"divergence must be a finite factor > 1"),
    ("train-float16-net", _train(net=_net().half()), ValueError,
     r"parameters are \['torch\.float16'\]; train\(\) runs float32 or float64"),
    ("train-other-problems-reference", lambda: train(Poisson2D(), _net(), steps=1, progress=False,
                                                     reference=Wave1D().reference(9)), ValueError,
     r"reference is of the problem 'wave1d', the run trains 'poisson2d'"),
    ("train-reference-other-params", lambda: train(Wave1D(c=3.0), _net(), steps=1, progress=False,
                                                   reference=Wave1D(c=2.0).reference(9)), ValueError,
     r"other parameters: c: reference 2\.0, problem 3\.0"),
    ("train-reference-not-a-field", _train(reference={"u": 1}), TypeError, r"reference must be a ReferenceField"),
    ("train-net-dims", lambda: train(Wave2D(), _net(), steps=1, progress=False), ValueError,
     r"the network maps 2 -> 1, the problem wave2d needs 3 -> 1"),
    ("train-empty-stages", lambda: train(Poisson2D(), _net(), stages=[], progress=False), ValueError,
     r"stages is empty"),
    ("train-not-a-stage", lambda: train(Poisson2D(), _net(), stages=["adam"], progress=False), TypeError,
     r"stages must hold pinn_sine\.optim stages"),
    ("train-unknown-weight", _train(weights={"bogus": 1.0}), ValueError,
     r"weights name unknown loss terms \['bogus'\]"),
    ("evaluate-wrong-grid", lambda: evaluate(_net(), Wave2D().reference(9)), ValueError,
     r"the network takes 2 inputs, the reference of 'wave2d' is on a grid of 3"),
    ("evaluate-other-problems-reference", lambda: evaluate(_trained(), Wave1D().reference(9)), ValueError,
     r"the network was trained for 'poisson2d', the reference is of 'wave1d'"),
    ("reference-nan", _field(np.array([[0.0, 1.0, np.nan]] * 3)), ValueError,
     r"field 'u' has 3 non-finite values \(nan or inf\) of 9"),
    ("reference-inf", _field(np.array([[0.0, 1.0, np.inf]] * 3)), ValueError, r"field 'u' has 3 non-finite"),
    ("derivative-spec-unknown-name-jet", lambda: forward_jet(_net(), torch.rand(3, 2), ("x", "y"),
                                                              DerivativeSpec(first=("z",))), ValueError,
     r"derivatives along \['z'\], which are not inputs; the inputs are \('x', 'y'\)"),
    ("derivative-spec-unknown-name-autograd", lambda: autograd_jet(_net(), torch.rand(3, 2), ("x", "y"),
                                                                    DerivativeSpec(second=(("x", "t"),))),
     ValueError, r"derivatives along \['t'\]"),
    ("derivative-spec-group", lambda: DerivativeSpec(laplacians=("xy",)), ValueError,
     r"each Laplacian group must be a non-empty tuple"),
    ("mlp-width-bool", lambda: MLP(2, 1, width=True), ValueError, r"width must be an integer >= 1, got width=True"),
    ("mlp-depth-zero", lambda: MLP(2, 1, depth=0), ValueError, r"depth must be an integer >= 1, got depth=0"),
    ("mlp-width-float", lambda: MLP(2, 1, width=8.0), ValueError, r"width must be an integer >= 1, got width=8\.0"),
    ("mlp-seed-float", lambda: MLP(2, 1, seed=0.5), ValueError, r"seed must be an integer, got seed=0\.5"),
    ("mlp-activation-class", lambda: MLP(2, 1, activation=Sine), TypeError, r"activation must be an Activation"),
    ("sine-omega-negative", lambda: Sine(-1.0), ValueError, r"omega must be > 0, got omega=-1\.0"),
    ("finer-first-bias-inf", lambda: Finer(first_bias_k=math.inf), ValueError,
     r"first_bias_k must be a finite number >= 0, got first_bias_k=inf"),
    ("finer-omega-nan", lambda: Finer(omega=math.nan), ValueError, r"omega must be > 0, got omega=nan"),
    ("metasin-k-zero", lambda: MetaSin(K=0), ValueError, r"K must be an integer >= 1, got K=0"),
    ("metasin-freq-init", lambda: MetaSin(freq_init="log"), ValueError, r'Invalid freq_init "log"'),
    ("fourier-scale-inf", lambda: FourierFeatures(scale=math.inf), ValueError,
     r"scale must be a finite number > 0, got scale=inf"),
    ("fourier-features-zero", lambda: FourierFeatures(0), ValueError, r"n_features must be an integer >= 1, got 0"),
    ("build-net-unknown", lambda: build_net(Poisson2D(), "swish"), ValueError,
     r'Invalid activation "swish"\. Must be one of'),
    ("build-net-option", lambda: build_net(Poisson2D(), "tanh", K=3), ValueError,
     r"activation tanh does not take \['K'\]"),
    ("wave1d-modes-int", lambda: Wave1D(modes=5), ValueError,
     r"modes must be a sequence of \(k, amplitude\) pairs, got modes=5"),
    ("wave1d-mode-k", lambda: Wave1D(modes=((0.5, 1.0),)), ValueError, r"mode number k must be an integer >= 1"),
    ("wave1d-c-zero", lambda: Wave1D(c=0), ValueError, r"c must be > 0, got c=0"),
    ("helmholtz-k-negative", lambda: Helmholtz2D(k=-1), ValueError, r"k must be > 0, got k=-1"),
    ("poisson-bounds-reversed", lambda: Poisson2D(bounds=((1, -1), (-1, 1))), ValueError,
     r"bounds\[0\] = \(1\.0, -1\.0\) is empty or reversed"),
    ("poisson-u-not-callable", lambda: Poisson2D(u=3), ValueError, r"u must be a callable u\(x, y\).* got u=3"),
    ("poisson-sampler", lambda: Poisson2D(sampler="grid"), ValueError, r'Invalid sampler "grid"'),
    ("inpainting-size-float", lambda: Inpainting(size=16.5), ValueError,
     r"size must be an integer >= 1 or an \(H, W\) pair of them, got size=16\.5"),
    ("inpainting-prior", lambda: Inpainting(size=16, prior="l1"), ValueError, r'Invalid prior "l1"'),
    ("adam-steps-float", lambda: Adam(2.5), ValueError, r"steps must be an integer >= 0, got steps=2\.5"),
    ("adam-lr-inf", lambda: Adam(2, lr=math.inf), ValueError, r"lr must be > 0 .* got lr=inf"),
    ("lbfgs-batch-zero", lambda: LBFGS(2, batch=0), ValueError, r"LBFGS: batch must be an integer >= 1 .* got batch=0"),
    ("gauss-newton-damping", lambda: GaussNewton(2, damping=-1.0), ValueError,
     r"GaussNewton: damping must be > 0, got damping=-1\.0"),
    ("gradnorm-alpha", lambda: GradNormWeights(alpha=2.0), ValueError, r"alpha must be in \[0, 1\), got 2\.0"),
    ("causal-eps", lambda: CausalWeights(eps=-1.0), ValueError, r"eps must be > 0, got eps=-1\.0"),
    ("sampling-box-reversed", lambda: sampling.box(4, ((1.0, 0.0),), torch.Generator()), ValueError,
     r"bounds\[0\] = \(1\.0, 0\.0\) is empty or reversed"),

    # --- issue 25: strings, booleans, infinities and huge integers where numbers are expected
    ("poisson-boundary-fraction-str", lambda: Poisson2D(boundary_fraction="0.25"), ValueError,
     r"boundary_fraction must be a positive number, got boundary_fraction='0\.25'"),
    ("poisson-boundary-fraction-bool", lambda: Poisson2D(boundary_fraction=True), ValueError,
     r"boundary_fraction must be a positive number, got boundary_fraction=True"),
    ("poisson-boundary-fraction-inf", lambda: Poisson2D(boundary_fraction=math.inf), ValueError,
     r"boundary_fraction must be > 0, got boundary_fraction=inf"),
    ("helmholtz-boundary-fraction-str", lambda: Helmholtz2D(boundary_fraction="0.25"), ValueError,
     r"boundary_fraction must be a positive number, got boundary_fraction='0\.25'"),
    ("point-source-fraction-str", lambda: HelmholtzPointSource(source_fraction="0.1"), ValueError,
     r"source_fraction must be in \[0, 1\) .*got source_fraction='0\.1'"),
    ("wave1d-boundary-fraction-inf", lambda: Wave1D(boundary_fraction=math.inf), ValueError,
     r"boundary_fraction must be a finite number >= 0, got boundary_fraction=inf"),
    ("wave1d-mode-amplitude-str", lambda: Wave1D(modes=((1, "1.0"),)), ValueError,
     r"mode amplitude must be a finite number, got '1\.0' for k=1"),
    ("wave1d-time-resolution-bool", lambda: Wave1D(time_resolution=True), ValueError,
     r"time_resolution must be an integer >= 2, got True"),
    ("sampling-bounds-words", lambda: sampling.check_bounds((("a", "b"),)), ValueError,
     r"bounds\[0\] must be a \(lo, hi\) pair of finite numbers, got \('a', 'b'\)"),
    ("poisson-bounds-inf", lambda: Poisson2D(bounds=((0.0, math.inf), (0.0, 1.0))), ValueError,
     r"bounds\[0\] = \(0\.0, inf\) is infinite, empty or reversed; give finite \(lo, hi\)"),
    ("sampling-box-n-str", lambda: sampling.box("4", ((0.0, 1.0),), torch.Generator()), ValueError,
     r"n must be >= 0 \(an integer number of points\), got n='4'"),
    ("sampling-box-n-float", lambda: sampling.box(2.5, ((0.0, 1.0),), torch.Generator()), ValueError,
     r"n must be >= 0 \(an integer number of points\), got n=2\.5"),
    ("metasin-k-bool", lambda: MetaSin(K=True), ValueError, r"K must be an integer >= 1, got K=True"),
    ("metasin-k-huge", lambda: MLP(2, 1, width=2, depth=1, activation=MetaSin(K=2**70)), ValueError,
     r"K must be an integer >= 1 and < 2\*\*31 \(a torch size\), got K=1180591620717411303424"),
    ("metasin-freq-range-str", lambda: MetaSin(freq_range=("1", "35")), ValueError,
     r"freq_range must be a pair \(lo, hi\) of finite numbers with 0 < lo <= hi, got freq_range=\('1', '35'\)"),
    ("metasin-relu-start-str", lambda: MetaSin(relu_start="no"), ValueError,
     r"relu_start must be True or False, got relu_start='no'"),
    ("mlp-width-huge", lambda: MLP(2, 1, width=2**70), ValueError,
     r"width must be an integer >= 1 and < 2\*\*31 \(a torch size\), got width=1180591620717411303424"),
    ("mlp-width-unallocatable", lambda: MLP(2, 1, width=2**20, depth=2), ValueError,
     r"MLP\(width=1048576, depth=2\): the network's .* parameters cannot be allocated"),
    ("mlp-seed-huge", lambda: MLP(2, 1, seed=2**70), ValueError,
     r"seed must be an integer in \[0, 2\*\*63\), got seed=1180591620717411303424"),
    ("fourier-features-huge", lambda: FourierFeatures(2**70), ValueError,
     r"n_features must be an integer >= 1 and < 2\*\*31 \(a torch size\), got 1180591620717411303424"),
    ("train-seed-huge", _train(seed=2**70), ValueError,
     r"seed must be an integer in \[0, 2\*\*63\), got seed=1180591620717411303424"),
    ("train-seed-negative", _train(seed=-1), ValueError, r"seed must be an integer in \[0, 2\*\*63\), got seed=-1"),
    ("train-time-limit-str", _train(time_limit="10"), ValueError, r"time_limit must be > 0 seconds, got '10'"),
    ("train-time-limit-bool", _train(time_limit=True), ValueError, r"time_limit must be > 0 seconds, got True"),
    ("train-time-limit-inf", _train(time_limit=math.inf), ValueError,
     r"time_limit must be > 0 seconds, got inf; give a finite number of seconds, or None"),
    ("train-batch-huge", _train(batch=2**70), ValueError,
     r"batch must be an integer >= 1 .* got batch=1180591620717411303424 \(a torch size: < 2\*\*31\)"),
    ("adam-lr-str", lambda: Adam(2, lr="0.01"), ValueError, r"Adam: lr must be > 0 .* got lr='0\.01'"),
    ("adam-final-lr-factor-str", lambda: Adam(2, final_lr_factor="0.1"), ValueError,
     r"Adam: final_lr_factor must be in \(0, 1\], got final_lr_factor='0\.1'"),
    ("adam-final-lr-factor-bool", lambda: Adam(2, final_lr_factor=True), ValueError,
     r"Adam: final_lr_factor must be in \(0, 1\], got final_lr_factor=True"),
    ("adam-betas-str", lambda: Adam(2, betas=("0.9", "0.99")), ValueError,
     r"Adam: betas must be a pair \(beta1, beta2\) of numbers, got \('0\.9', '0\.99'\)"),
    ("gradnorm-alpha-str", lambda: GradNormWeights(alpha="0.5"), ValueError, r"alpha must be in \[0, 1\), got '0\.5'"),
    ("gradnorm-update-every-bool", lambda: GradNormWeights(update_every=True), ValueError,
     r"update_every must be an integer >= 1, got True"),
    ("rad-k-str", lambda: RADSampler(k="1"), ValueError, r"k must be >= 0 \(a finite number\), got k='1'"),
    ("rad-pool-bool", lambda: RADSampler(pool=True), ValueError, r"pool must be an integer >= 1 or None, got True"),
    ("rad-pool-factor-inf", lambda: RADSampler(pool_factor=math.inf), ValueError,
     r"pool_factor must be a finite number >= 1, got inf"),
    # --- issue 25: user callables of the wrong arity, shape or library, found at construction
    ("poisson-u-arity", lambda: Poisson2D(u=lambda x: x), ValueError,
     r"u: calling u\(x, y\) on two float64 tensors of shape \(5,\) failed \(TypeError: .*takes 1 positional"),
    ("poisson-u-numpy", lambda: Poisson2D(u=lambda x, y: np.sin(x) * y), ValueError,
     r"u: calling u\(x, y\) .* failed \(RuntimeError: Can't call numpy\(\).*use torch operations"),
    ("poisson-u-math", lambda: Poisson2D(u=lambda x, y: math.sin(x)), ValueError,
     r"u: calling u\(x, y\) .* failed \(.*only one element tensors"),
    ("poisson-u-shape", lambda: Poisson2D(u=lambda x, y: torch.ones(3)), ValueError,
     r"u\(x, y\) returned shape \(3,\) for 5 points; expected \(5,\)"),
    ("poisson-u-two-columns", lambda: Poisson2D(u=lambda x, y: torch.stack([x, y], 1)), ValueError,
     r"u\(x, y\) returned shape \(5, 2\) for 5 points; expected \(5,\)"),
    ("poisson-u-float", lambda: Poisson2D(u=lambda x, y: 1.0), ValueError,
     r"u\(x, y\) returned a float, expected a torch tensor of shape \(5,\)"),
    ("poisson-u-nan", lambda: Poisson2D(u=lambda x, y: torch.log(x)), ValueError,
     r"u\(x, y\) returned non-finite values at \d of 5 points"),
    ("helmholtz-u-arity", lambda: Helmholtz2D(u=lambda x, y, z: x), ValueError,
     r"u: calling u\(x, y\) .* failed \(TypeError"),
    ("helmholtz-u-numpy", lambda: Helmholtz2D(u=lambda x, y: np.cos(x) * y), ValueError,
     r"u: calling u\(x, y\) .* failed \(RuntimeError: Can't call numpy"),
    ("wave2d-c-arity", lambda: Wave2D(c=lambda x: x), ValueError,
     r"c: calling c\(x, y\) on two float64 tensors of shape \(\d+,\) failed \(TypeError"),
    ("wave2d-c-math", lambda: Wave2D(c=lambda x, y: math.exp(x)), ValueError,
     r"c: calling c\(x, y\) .* failed \(.*only one element tensors"),
    ("wave2d-c-shape", lambda: Wave2D(c=lambda x, y: torch.ones(7)), ValueError,
     r"c\(x, y\) returned shape \(7,\) for \d+ points; expected \(\d+,\) or a scalar"),
    ("point-source-velocity-arity", lambda: HelmholtzPointSource(velocity=lambda x: 1.0), ValueError,
     r"velocity: calling velocity\(x, y\) .* failed \(TypeError"),
    # --- issue 25: objects of the wrong type
    ("train-problem-name", lambda: train("poisson2d", _net(), steps=1, progress=False), TypeError,
     r"problem must be a Problem instance such as Poisson2D\(\), got 'poisson2d'; .*problem_class\('poisson2d'\)\(\)"),
    ("train-net-linear", lambda: train(Poisson2D(), nn.Linear(2, 1), steps=1, progress=False), TypeError,
     r"net must be a network with in_dim and out_dim .* got Linear\(in_features=2"),
    ("train-net-str", lambda: train(Poisson2D(), "siren", steps=1, progress=False), TypeError,
     r"net must be a network .* got 'siren'"),
    ("train-single-stage", lambda: train(Poisson2D(), _net(), stages=Adam(2), progress=False), TypeError,
     r"stages must be a list of stages, e\.g\. stages=\[Adam\(steps=2, .*\)\]; got the single stage"),
    ("train-checkpoint-int", _train(checkpoint=3), TypeError, r"checkpoint must be a file path or None, got 3"),
    ("train-compile-str", _train(compile="no"), ValueError, r"compile must be True or False, got compile='no'"),
    ("mlp-fourier-int", lambda: MLP(2, 1, fourier=64), TypeError,
     r"fourier must be a FourierFeatures\(n_features, scale\) or None, got 64"),
    ("build-net-problem-name", lambda: build_net("poisson2d", "siren"), TypeError,
     r"problem must be a Problem instance .* got 'poisson2d'"),
    ("evaluate-net-str", lambda: evaluate("siren", _grid_field()), TypeError,
     r"net must be a torch module .* got 'siren'"),
    ("evaluate-ref-str", lambda: evaluate(_net(), "poisson2d"), TypeError,
     r"ref must be a ReferenceField .* got 'poisson2d'"),
    ("evaluate-net-wrong-inputs", lambda: evaluate(nn.Linear(3, 1), _grid_field()), ValueError,
     r"the network failed on the 9 points \(9, 2\) of the reference grid of 'poisson2d' \(RuntimeError: "),
    ("compare-activations-str", lambda: compare(["poisson2d"], "siren", steps=1, out="unused"), TypeError,
     r"activations must be a list of names, got 'siren'"),
    # --- issue 25: evaluate with a non-finite prediction, an empty or non-boolean mask
    ("evaluate-prediction-nan", lambda: evaluate(_net(), _grid_field(), prediction=_with_nans(3)), ValueError,
     r"the prediction has non-finite values \(nan or inf\) at 3 of the 9 points of the reference grid"),
    ("evaluate-network-nan", lambda: evaluate(_nan_net(), _grid_field()), ValueError,
     r"the network's prediction has non-finite values \(nan or inf\) at 9 of the 9 points"),
    ("evaluate-prediction-missing-field", lambda: evaluate(_net(), _grid_field(), prediction={"v": np.zeros((3, 3))}),
     ValueError, r"prediction has the fields \['v'\]; the reference of 'poisson2d' has \['u'\]"),
    ("evaluate-prediction-shape", lambda: evaluate(_net(), _grid_field(), prediction={"u": np.zeros((4, 4))}),
     ValueError, r"prediction\['u'\] has shape \(4, 4\); the reference's field has shape \(3, 3\)"),
    ("evaluate-mask-empty", lambda: evaluate(_net(), _grid_field(mask=np.zeros((3, 3), bool))), ValueError,
     r"the reference's mask selects no grid point"),
    ("evaluate-mask-float", lambda: evaluate(_net(), _grid_field(mask=np.ones((3, 3)))), ValueError,
     r"the reference's mask has dtype float64; a mask must be boolean"),
    ("evaluate-mask-int", lambda: evaluate(_net(), _grid_field(mask=np.ones((3, 3), int))), ValueError,
     r"the reference's mask has dtype int64; a mask must be boolean"),
    ("train-reference-empty-mask", _train(reference=_grid_field(mask=np.zeros((3, 3), bool))), ValueError,
     r"the reference's mask selects no grid point"),
    # --- issue 25: problem names that are not safe file names (the cache file is named after them)
    ("register-name-slash", _named_problem("a/b"), ValueError,
     r'the problem name "a/b" is not a safe file name: .*\(regex \[A-Za-z0-9\]\[A-Za-z0-9_\.-\]\*\)'),
    ("register-name-space", _named_problem("my problem"), ValueError, r'problem name "my problem" is not a safe file'),
    ("register-name-dotdot", _named_problem("../../x"), ValueError, r'problem name "\.\./\.\./x" is not a safe file'),
    ("register-name-hidden", _named_problem(".hidden"), ValueError, r'problem name "\.hidden" is not a safe file'),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in API], ids=[c[0] for c in API])
def test_bad_api_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# (id, argv, message pattern): each ends in SystemExit with one line naming the option
CLI = [
    ("lbfgs-steps-negative", ["solve", "poisson2d", "--lbfgs-steps", "-1"],
     r"argument --lbfgs-steps: must be an integer >= 0, got '-1'"),
    ("steps-word", ["solve", "poisson2d", "--steps", "many"], r"argument --steps: must be an integer, got 'many'"),
    ("width-zero", ["solve", "poisson2d", "--width", "0"], r"argument --width: must be an integer >= 1, got '0'"),
    ("batch-float", ["solve", "poisson2d", "--batch", "2.5"], r"argument --batch: must be an integer, got '2\.5'"),
    ("lr-zero", ["solve", "poisson2d", "--lr", "0"], r"argument --lr: must be a finite number > 0, got '0'"),
    ("lr-nan", ["solve", "poisson2d", "--lr", "nan"], r"argument --lr: must be a finite number > 0, got 'nan'"),
    ("first-omega-negative", ["solve", "poisson2d", "--first-omega", "-3"],
     r"argument --first-omega: must be a finite"),
    ("gn-damping-inf", ["solve", "poisson2d", "--gn-damping", "inf"], r"argument --gn-damping: must be a finite"),
    ("resolution-one", ["solve", "poisson2d", "--resolution", "1"], r"argument --resolution: must be an integer >= 2"),
    ("time-limit-negative", ["solve", "poisson2d", "--time-limit", "-5"], r"argument --time-limit: must be a finite"),
    ("gradnorm-alpha", ["solve", "poisson2d", "--gradnorm-alpha", "1.5"],
     r"argument --gradnorm-alpha: must be a number in \[0, 1\)"),
    ("device-cuda-on-cpu", ["solve", "poisson2d", "--device", "cuda"] if not torch.cuda.is_available()
     else ["solve", "poisson2d", "--device", "cuda:99"], r"argument --device: 'cuda(:99)?': "),
    ("device-unknown", ["solve", "poisson2d", "--device", "gpu0"], r"argument --device: 'gpu0' is not a torch device"),
    ("dtype", ["solve", "poisson2d", "--dtype", "float16"], r"argument --dtype: invalid choice: 'float16'"),
    ("engine", ["solve", "poisson2d", "--engine", "jax"], r"argument --engine: invalid choice: 'jax'"),
    ("abbreviation", ["solve", "poisson2d", "--lbfgs", "3"], r'Poisson2D has no option "lbfgs"'),
    ("unknown-problem", ["solve", "poison2d"], r'Invalid problem "poison2d"\. Did you mean "poisson2d"\? Must be one of'),
    ("no-problem", ["solve"], r"solve needs a PROBLEM"),
    ("problem-option-value", ["solve", "wave1d", "--c"], r"option --c needs a value"),
    ("problem-option-bad", ["solve", "wave1d", "--c", "-2"], r"Wave1D: c must be > 0, got c=-2"),
    ("problem-option-type", ["solve", "wave1d", "--modes", "5"], r"Wave1D: modes must be a sequence"),
    ("problem-option-unknown", ["solve", "wave1d", "--speed", "3"], r'Wave1D has no option "speed"'),
    ("activation", ["solve", "poisson2d", "--activation", "swish"], r'Invalid activation "swish"'),
    ("weight-syntax", ["solve", "poisson2d", "--weight", "boundary:10"], r"--weight takes TERM=VALUE"),
    ("resample-every", ["solve", "poisson2d", "--resample-every", "often"], r"--resample-every takes an integer"),
    ("constraint-unsupported", ["solve", "inpainting", "--constraint", "hard"], r"Inpainting has no constraint option"),
    ("resume-missing", ["solve", "poisson2d", "--resume", "/nonexistent/run"],
     r"--resume /nonexistent/run: no such checkpoint file or run folder"),
    ("config-missing", ["solve", "--config", "/nonexistent/config.json"], r"--config: run config .* does not exist"),
    ("seeds-words", ["compare", "--seeds", "a,b", "--steps", "1"],
     r"argument --seeds: takes comma-separated integers, e.g\. 0,1,2; got 'a,b'"),
    ("compare-jobs-zero", ["compare", "--jobs", "0", "--steps", "1"], r"argument --jobs: must be an integer >= 1"),
    ("compare-no-budget", ["compare"], r"one of the arguments --steps --seconds is required"),
    ("reference-resolution", ["reference", "poisson2d", "--resolution", "x"],
     r"argument --resolution: must be an integer"),
    ("problems-extra", ["problems", "--all"], r"unrecognized arguments: --all"),
    # --- issue 25: errors found after the parser (one line, no traceback, exit status 1)
    ("weight-unknown-term", ["solve", "poisson2d", "--steps", "1", "--resolution", "9", "--weight", "bogus=1"],
     r"weights name unknown loss terms \['bogus'\]; poisson2d has \['boundary', 'pde'\]"),
    ("causal-on-steady", ["solve", "poisson2d", "--steps", "1", "--resolution", "9", "--causal-eps", "1"],
     r"CausalWeights needs a time-dependent problem"),
    ("kernels-triton-on-cpu" if not torch.cuda.is_available() else "kernels-compiled-metasin",
     ["solve", "poisson2d", "--steps", "1", "--resolution", "9", "--kernels", "triton"]
     if not torch.cuda.is_available() else ["solve", "poisson2d", "--steps", "1", "--resolution", "9", "--kernels",
                                            "compiled", "--activation", "metasin", "--engine", "autograd"],
     r"kernels (triton|compiled) \(--kernels\): .*--kernels native" if not torch.cuda.is_available() else r"."),
    ("seed-huge", ["solve", "poisson2d", "--seed", "99999999999999999999999"],
     r"argument --seed: must be an integer in \[0, 2\*\*63\), got '99999999999999999999999'"),
    ("seed-negative", ["solve", "poisson2d", "--seed", "-1"], r"argument --seed: must be an integer >= 0, got '-1'"),
    ("width-huge", ["solve", "poisson2d", "--width", "99999999999"],
     r"argument --width: must be an integer in \[1, 2\*\*31\), got '99999999999'"),
    ("batch-huge", ["solve", "poisson2d", "--batch", "99999999999999999999"],
     r"argument --batch: must be an integer in"),
    ("fourier-huge", ["solve", "poisson2d", "--fourier", "99999999999999"],
     r"argument --fourier: must be an integer in"),
    ("threads-huge", ["solve", "poisson2d", "--threads", "99999999999999999999"],
     r"argument --threads: must be an integer in \[1, 1024\]"),
    ("width-unallocatable", ["solve", "poisson2d", "--width", "1048576", "--depth", "2"],
     r"MLP\(width=1048576, depth=2\): the network's .* parameters cannot be allocated"),
    # --- issue 25: compare's lists: empty names, duplicates
    ("compare-activations-empty", ["compare", "--activations", "", "--steps", "1"],
     r"argument --activations: takes comma-separated names from \[.*'siren'.*\]; got ''"),
    ("compare-activations-empty-item", ["compare", "--activations", "siren,", "--steps", "1"],
     r"argument --activations: .*got 'siren,' \(an empty name\)"),
    ("compare-activations-duplicate", ["compare", "--activations", "siren,tanh,siren", "--steps", "1"],
     r"argument --activations: 'siren' is given twice"),
    ("compare-activations-unknown", ["compare", "--activations", "sirne", "--steps", "1"],
     r'argument --activations: Invalid activation "sirne"\. Did you mean "siren"\?'),
    ("compare-problems-empty", ["compare", "--problems", "", "--steps", "1"],
     r"argument --problems: takes comma-separated names from \[.*'poisson2d'.*\]; got ''"),
    ("compare-problems-duplicate", ["compare", "--problems", "wave1d,wave1d", "--steps", "1"],
     r"argument --problems: 'wave1d' is given twice"),
    ("compare-seeds-duplicate", ["compare", "--seeds", "0,0", "--steps", "1"],
     r"argument --seeds: 0 is given twice; got '0,0'"),
    ("compare-seeds-negative", ["compare", "--seeds", "-1", "--steps", "1"],
     r"argument --seeds: .*integers in \[0, 2\*\*63\)"),
    ("compare-constraints-empty", ["compare", "--constraints", "", "--steps", "1"],
     r"argument --constraints: takes comma-separated names from \['soft', 'hard'\]; got ''"),
    ("compare-constraints-duplicate", ["compare", "--constraints", "soft,soft", "--steps", "1"],
     r"argument --constraints: 'soft' is given twice"),
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_bad_cli_input(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a solve that gets past the parser must not leave runs/ in the checkout
    # Triton's CPU interpreter, switched on by the kernel tests of this process, would run
    # "--kernels triton" on the CPU: these rows are about a process without it.
    from pinn_sine.kernels import ops
    monkeypatch.setattr(ops, "interpreter_active", lambda: False)
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = info.value.code if isinstance(info.value.code, str) else capsys.readouterr().err
    assert info.value.code != 0
    assert message.strip().count("\n") == 0, message  # one line, no usage block or traceback
    assert re.search(match, message), message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A finished 2-step Poisson2D run (config.json, checkpoint.pt) that each test copies."""
    root = tmp_path_factory.mktemp("stored_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINN_SINE_CACHE", str(root / "cache"))
        assert main(["solve", "poisson2d", "--steps", "2", "--width", "4", "--depth", "1", "--resolution", "9",
                     "--out", str(root / "run"), "--quiet"]) == 0
    return root / "run"


def _copy_run(stored_run, tmp_path, **options):
    """A copy of the stored run; with ``options``, its config.json has them set and no
    digest (a hand-edited template, which ``--config`` reads)."""
    run = tmp_path / "run"
    shutil.copytree(stored_run, run)
    if options:
        config = json.loads((run / "config.json").read_text())
        config["options"].update(options)
        config.pop("digest", None)
        (run / "config.json").write_text(json.dumps(config))
    return run


# (id, options written into config.json, extra argv, message pattern): `solve --config FILE`
# refuses a config it cannot honour, naming the option, its value and what is valid
CONFIGS = [
    ("unknown-option", {"widht": 8}, [], r"--config .*config\.json: unknown option widht=8\. Did you mean \"width\"\?"),
    ("unknown-weighting", {"weighting": "softadapt"}, [],
     r"--config .*config\.json: weighting='softadapt' is not one of \['fixed', 'gradnorm'\]"),
    ("dtype-float16", {"dtype": "float16"}, [],
     r"--config .*config\.json: dtype='float16' is not one of \['float32', 'float64'\]"),
    ("width-float", {"width": 8.5}, [], r"--config .*config\.json: width=8\.5: must be an integer, got '8\.5'"),
    ("steps-bool", {"steps": True}, [], r"--config .*config\.json: steps=True: must be an integer"),
    ("lr-str", {"lr": "fast"}, [], r"--config .*config\.json: lr='fast': must be a number, got 'fast'"),
    ("quiet-str", {"quiet": "yes"}, [], r"--config .*config\.json: quiet='yes': must be true or false"),
    ("weight-str", {"weight": "boundary=10"}, [],
     r"--config .*config\.json: weight='boundary=10': must be a list of TERM=VALUE strings"),
]


@pytest.mark.parametrize("options, argv, match", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_bad_config(options, argv, match, stored_run, tmp_path, capsys):
    run = _copy_run(stored_run, tmp_path, **options)
    with pytest.raises(SystemExit) as info:
        main(["solve", "--config", str(run / "config.json"), "--out", str(tmp_path / "new"), *argv])
    message = str(info.value.code)
    assert message.strip().count("\n") == 0, message
    assert re.search(match, message), message
    assert not (tmp_path / "new").exists()


# (id, argv after `solve --resume RUN`, message pattern): options that cannot change on
# resume are refused, listed with the run's value
RESUMES = [
    ("lr", ["--lr", "0.05"], r"--resume .*run: these options cannot change when a run resumes: --lr 0\.05 "
                             r"\(the run has None\); only --steps, --lbfgs-steps, --gn-steps, --time-limit"),
    ("seed", ["--seed", "7"], r"cannot change when a run resumes: --seed 7 \(the run has 0\)"),
    ("dtype", ["--dtype", "float64"], r"cannot change when a run resumes: --dtype float64 \(the run has float32\)"),
    ("batch", ["--batch", "64"], r"cannot change when a run resumes: --batch 64 \(the run has None\)"),
    ("width", ["--width", "16"], r"cannot change when a run resumes: --width 16 \(the run has 4\)"),
    ("activation", ["--activation", "tanh"], r"--activation tanh \(the run has siren\)"),
    ("engine", ["--engine", "autograd"], r"--engine autograd \(the run has jet\)"),
    ("constraint", ["--constraint", "hard"], r"--constraint hard \(the run has soft\)"),
    ("problem-option", ["poisson2d", "--sampler", "uniform"], r"--sampler uniform \(the run has sobol\)"),
    ("problem", ["wave1d"], r"problem wave1d \(the run has poisson2d\)"),
    ("several", ["--seed", "7", "--K", "3", "--steps", "5"],
     r"cannot change when a run resumes: --seed 7 \(the run has 0\), --K 3 \(the run has None\);"),
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in RESUMES], ids=[c[0] for c in RESUMES])
def test_resume_refuses_options_that_cannot_change(argv, match, stored_run, tmp_path):
    run = _copy_run(stored_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(SystemExit) as info:
        main(["solve", "--resume", str(run), *argv, "--quiet"])
    message = str(info.value.code)
    assert message.strip().count("\n") == 0, message
    assert re.search(match, message), message
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # config.json untouched


def test_resume_takes_the_options_that_may_change(stored_run, tmp_path, capsys):
    """More steps, another time limit, evaluation and checkpoint intervals, threads,
    device and quiet change on resume; the run's own options (the seed) stay as stored,
    and the same value given again is no change."""
    run = _copy_run(stored_run, tmp_path)
    assert main(["solve", "--resume", str(run), "--steps", "4", "--time-limit", "60", "--eval-every", "2",
                 "--checkpoint-every", "2", "--threads", "1", "--device", "cpu", "--seed", "0", "--width", "4",
                 "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["seed"] == 0 and config["options"]["steps"] == 4
    assert json.loads((run / "metrics.json").read_text())["steps_done"] == 4


def test_bad_out_folders(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match=r"--out .*file: is a file, not a folder"):
        main(["solve", "poisson2d", "--out", str(blocker), "--steps", "1"])
    with pytest.raises(SystemExit, match=r"--out .*file/run: cannot create the folder"):
        main(["solve", "poisson2d", "--out", str(blocker / "run"), "--steps", "1"])


def test_table_size():
    assert len(API) + len(CLI) >= 60


def test_resume_moves_a_run_to_another_device(stored_run, tmp_path, capsys):
    """The stored device is checked where it is used: a run stored with device "cuda"
    resumes on a CPU with --device cpu (a machine option), and without it the option is
    named."""
    from pinn_sine.runs import json_text

    run = _copy_run(stored_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["options"]["device"] = "cuda:99"
    (run / "config.json").write_text(json_text(config))
    if not torch.cuda.is_available() or torch.cuda.device_count() <= 99:
        with pytest.raises(SystemExit):
            main(["solve", "--resume", str(run), "--steps", "3", "--quiet"])
        assert "argument --device: 'cuda:99'" in capsys.readouterr().err
    assert main(["solve", "--resume", str(run), "--steps", "3", "--device", "cpu", "--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps_done"] == 3
