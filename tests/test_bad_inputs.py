"""A table of bad inputs, through the Python API and the command line: each is rejected
early with a message naming the argument (or option), its value and what is valid."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from pinn_sine import evaluate, sampling, train
from pinn_sine.cli import main
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.derivatives.autograd import autograd_jet
from pinn_sine.derivatives.forward import forward_jet
from pinn_sine.nets import MLP, Finer, FourierFeatures, MetaSin, Sine, build_net
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.problems import Helmholtz2D, Inpainting, Poisson2D, Wave1D, Wave2D
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


def _field(u):
    return lambda: ReferenceField(problem="poisson2d", params={}, coords={"x": np.arange(3.0), "y": np.arange(3.0)},
                                  fields={"u": u}, solver="test", order=2, spacing=(1.0, 1.0))


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
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_bad_cli_input(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = info.value.code if isinstance(info.value.code, str) else capsys.readouterr().err
    assert message.strip().count("\n") == 0, message  # one line, no usage block or traceback
    assert re.search(match, message), message


def test_bad_out_folders(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match=r"--out .*file: is a file, not a folder"):
        main(["solve", "poisson2d", "--out", str(blocker), "--steps", "1"])
    with pytest.raises(SystemExit, match=r"--out .*file/run: cannot create the folder"):
        main(["solve", "poisson2d", "--out", str(blocker / "run"), "--steps", "1"])


def test_table_size():
    assert len(API) + len(CLI) >= 60
