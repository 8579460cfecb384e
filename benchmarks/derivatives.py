"""Training-step time and memory of the derivative engines.

    python benchmarks/derivatives.py            # CPU: the issue's headline case and a small sweep
    python benchmarks/derivatives.py --full     # the whole grid (meant for a GPU)
    python benchmarks/derivatives.py --problems # whole training steps of the PDE problems

One training step = forward with the Laplacian over all inputs, loss
mean((Lap u)^2) + mean(u^2), backward to the weights. Engines:
  jet       -- forward propagation of (value, gradient, Laplacian) as one stacked
               tensor (the forward Laplacian: the Laplacian is one stream)
  autograd  -- reverse-over-reverse (two nested autograd.grad, then backward)
  func      -- torch.func: vmap(hessian(u)) per point, then backward
Memory: on CUDA the peak allocated bytes of the step; on CPU the bytes of tensors saved
for backward (a saved_tensors_hooks count of unique storages), which is what
dominates the peak there.
FLOP rate: the matrix-product FLOPs of the engine (forward + 2x for backward) over the
step time, a lower bound on what the matmuls achieve.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import functional_call, hessian, vmap

from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet
from pinn_sine.nets import MLP, Finer, MetaSin, Sine

ACTS = {"siren": lambda: Sine(30.0), "finer": lambda: Finer(30.0), "metasin": lambda: MetaSin(K=10)}


def step_fn(engine: str, net: MLP, x: torch.Tensor):
    names = tuple(f"x{i}" for i in range(x.shape[1]))
    spec = DerivativeSpec.laplacian(names)
    if engine in ("jet", "autograd"):
        fn = forward_jet if engine == "jet" else autograd_jet

        def step():
            jet = fn(net, x, names, spec)
            loss = (jet.laplacian(names) ** 2).mean() + (jet.u ** 2).mean()
            loss.backward()
        return step
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())

    def u_single(p, xi):
        return functional_call(net, (p, buffers), (xi.unsqueeze(0),))[0, 0]

    def step():
        H = vmap(hessian(u_single, argnums=1), in_dims=(None, 0))(params, x)
        lap = H.diagonal(dim1=-2, dim2=-1).sum(-1)
        u = net(x)
        loss = (lap ** 2).mean() + (u ** 2).mean()
        loss.backward()
    return step


def matmul_flops(engine: str, net: MLP, n: int, d: int) -> float:
    widths = [net.linears[0].in_features] + [l.out_features for l in net.linears]
    per_point = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
    # jet: value + d first derivatives + the Laplacian stream per layer.
    # autograd/func: forward + two reverse sweeps of a graph of similar size, roughly.
    streams = (2 + d) if engine == "jet" else (1 + 2 * d)
    return 3.0 * streams * per_point * n


def measure(engines, act, d, width, depth, n, device, repeats):
    """Per engine: (median step time, memory, matmul FLOP rate), and the per-round
    time ratios autograd/jet and func/jet. The engines take turns within every round,
    so load from other processes on a shared machine hits them alike; the ratio of
    each round is taken before the median."""
    torch.manual_seed(0)
    activation = ACTS[act]()
    omegas = {"first_omega": 3.0} if hasattr(activation, "omega") else {}
    net = MLP(d, 1, width, depth, activation=activation, **omegas).to(device)
    x = (torch.rand(n, d, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)
    steps = {e: step_fn(e, net, x) for e in engines}
    times, failed = time_rounds(steps, repeats, device, lambda: net.zero_grad(set_to_none=True),
                                f"{act} {d} {width} {n}")
    live = [e for e in engines if e not in failed]
    out = {}
    for e in engines:
        if e in failed:
            out[e] = (float("nan"), float("nan"), float("nan"))
            continue
        med = statistics.median(times[e])
        out[e] = (med, _memory(steps[e], net, device), matmul_flops(e, net, n, d) / med)
    ratios = {other: round_ratio(times, other, "jet") for other in ("autograd", "func")
              if other in live and "jet" in live}
    return out, ratios


def time_rounds(steps: dict, repeats: int, device, reset, label: str) -> tuple[dict, dict]:
    """Warm every step up once, then time ``repeats`` rounds in which the steps take
    turns, so load from other processes on a shared machine hits them alike. ``reset``
    runs after every call (zeroing the gradients). A step that raises RuntimeError in
    the warm-up (out of memory on the largest cases) is reported and left out.

    Returns (name -> seconds of each round, name -> the warm-up error of a failed step).
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    failed = {}
    for name, step in steps.items():
        try:
            step()  # warm-up (and compilation)
        except RuntimeError as err:
            failed[name] = err
            print(f"<!-- {name} {label}: {type(err).__name__} -->")
        reset()
    times = {name: [] for name in steps if name not in failed}
    for _ in range(repeats):
        for name in times:
            sync()
            t = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - t)
            reset()
    return times, failed


def round_ratio(times: dict, slow: str, fast: str) -> float:
    """The median over rounds of time[slow] / time[fast] measured in the same round."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def _memory(step, net, device) -> float:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        mem = torch.cuda.max_memory_allocated() - base
    else:
        seen = {}

        def pack(t):  # unique storages: a tensor saved by two nodes counts once
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        try:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                step()
            mem = sum(seen.values())
        except RuntimeError:  # torch.func transforms refuse saved-tensor hooks
            mem = float("nan")
    net.zero_grad(set_to_none=True)
    return mem


def gemm_ceiling(device, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large square float32 matmul on ``device``: the practical ceiling the
    jet's matrix products (tall-skinny, n x width x width) can be held against."""
    a = torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ a
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ a
        sync()
        times.append(time.perf_counter() - t)
    return 2 * size ** 3 / statistics.median(times) / 1e9


PROBLEM_NAMES = ("poisson2d", "helmholtz2d", "helmholtz-point-source", "wave1d", "wave2d")


def problem_steps(device, repeats: int, width: int, n: int, compiled: bool) -> None:
    """Whole training steps (sample once, every loss term, backward to the weights) of
    each PDE problem with SIREN width x 3, per engine, the engines taking turns."""
    from pinn_sine.problems import PROBLEMS

    engines = ["jet", "autograd"] + (["jet+compile"] if compiled else [])
    head = "| problem | streams (jet) | " + " | ".join(f"{e} [ms]" for e in engines) + \
        " | speed-up jet vs autograd |" + (" compile vs jet |" if compiled else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in PROBLEM_NAMES:
        problem = PROBLEMS[name]()
        net = MLP(problem.in_dim, problem.out_dim, width, 3, activation=Sine(30.0),
                  first_omega=problem.default_first_omega).to(device)
        batch = {k: v.to(device) for k, v in problem.sample(n, torch.Generator().manual_seed(0)).items()}
        streams = max(1 + len(spec.directions()) + len(spec.pairs()) + len(spec.laplacian_groups())
                      for spec in problem.derivatives.values())

        def make(engine):
            terms = problem.compute_losses
            if engine == "jet+compile":
                terms = torch.compile(problem.compute_losses)
                engine = "jet"

            def step():
                sum(terms(net, batch, engine).values()).backward()
            return step

        steps = {e: make(e) for e in engines}
        times, failed = time_rounds(steps, repeats, device, lambda: net.zero_grad(set_to_none=True), name)
        if failed:
            raise next(iter(failed.values()))
        med = {e: statistics.median(times[e]) * 1e3 for e in engines}
        row = f"| {name} | {streams} | " + " | ".join(f"{med[e]:.1f}" for e in engines) + \
            f" | {round_ratio(times, 'autograd', 'jet'):.2f}x |"
        if compiled:
            row += f" {round_ratio(times, 'jet', 'jet+compile'):.2f}x |"
        print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the whole grid (widths 64-512, n 1k-64k)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peak-tflops", type=float, default=None, help="device fp32 peak, printed beside the rate")
    ap.add_argument("--engines", default="jet,autograd,func")
    ap.add_argument("--problems", action="store_true",
                    help="time whole training steps of the PDE problems instead (SIREN, --width x 3, --points)")
    ap.add_argument("--width", type=int, default=128, help="with --problems")
    ap.add_argument("--points", type=int, default=4096, help="interior points per step, with --problems")
    ap.add_argument("--compile", action="store_true", help="with --problems: also the jet engine under torch.compile")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.problems:
        name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        print(f"device: {name}; SIREN {args.width}x3, {args.points} interior points; median of {args.repeats} "
              "steps, engines taking turns; speed-up = median of per-round ratios")
        problem_steps(device, args.repeats, args.width, args.points, args.compile)
        return
    if args.full:
        grid = [(a, d, w, 3, n) for a in ACTS for d in (2, 3) for w in (64, 128, 256, 512)
                for n in (1024, 4096, 16384, 65536)]
    else:
        grid = [("siren", 2, 128, 3, 4096), ("finer", 2, 128, 3, 4096), ("metasin", 2, 128, 3, 4096),
                ("siren", 3, 128, 3, 4096), ("siren", 2, 256, 3, 4096), ("siren", 2, 64, 3, 16384)]
    engines = args.engines.split(",")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; median of {args.repeats} steps (engines take turns; speed-up = median of the "
          "per-round ratios); memory = "
          + ("peak allocated" if device.type == "cuda" else "bytes saved for backward"))
    if args.peak_tflops:
        print(f"device fp32 peak: {args.peak_tflops} TFLOP/s")
    print(f"GEMM ceiling (a large square fp32 matmul here): {gemm_ceiling(device):.1f} GFLOP/s")
    head = "| act | d | width | n | " + " | ".join(f"{e} [ms]" for e in engines) + \
        " | speed-up jet vs autograd | speed-up jet vs func | mem jet/autograd | jet GFLOP/s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for act, d, w, depth, n in grid:
        res, ratios = measure(engines, act, d, w, depth, n, device, args.repeats)
        t = {e: res[e][0] * 1e3 for e in engines}
        row = f"| {act} | {d} | {w} | {n} | " + " | ".join(f"{t[e]:.2f}" for e in engines)
        sp_a = ratios.get("autograd", float("nan"))
        sp_f = ratios.get("func", float("nan"))
        mem = res["jet"][1] / res["autograd"][1] if "autograd" in res and "jet" in res else float("nan")
        rate = res["jet"][2] / 1e9 if "jet" in res else float("nan")
        print(row + f" | {sp_a:.2f}x | {sp_f:.2f}x | {mem:.2f} | {rate:.1f} |", flush=True)

if __name__ == "__main__":
    main()
