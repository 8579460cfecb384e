"""Training-step time and memory of the derivative engines against the strongest baselines.

    OMP_NUM_THREADS=1 python benchmarks/derivatives.py             # the issue's cases, one thread
    python benchmarks/derivatives.py --full                        # the whole grid (meant for a GPU)
    OMP_NUM_THREADS=1 python benchmarks/derivatives.py --problems  # whole training steps of the PDE problems
    OMP_NUM_THREADS=1 python benchmarks/derivatives.py --profile   # where the jet step's time goes, by op
    OMP_NUM_THREADS=1 python benchmarks/derivatives.py --jacobian  # Gauss-Newton Jacobian rows per second

One training step = forward with the Laplacian over all inputs, loss
mean((Lap u)^2) + mean(u^2), backward to the weights. Engines (``--engines``):
  jet        -- forward propagation of (value, gradient, Laplacian) as one stacked tensor
                (the forward Laplacian: the Laplacian is one stream), engine="jet"
  autograd   -- reverse-over-reverse: two nested autograd.grad, then backward
  fwdrev     -- forward-over-reverse: torch.func.jvp of torch.func.jacrev per direction,
                vmapped over directions and points (engine="func", the collapsed-Taylor
                paper's baseline)
  hessian    -- vmap(torch.func.hessian) per point
  jet-compiled -- the jet on the "compiled" backend (PINN_SINE_KERNELS=compiled: the
                SIREN/FINER nodes' arithmetic fused by torch.compile, one loop per pass)
  <e>+compile -- the same loss under torch.compile (reported where it compiles)
"best baseline" is the faster of autograd and fwdrev in each round; speed-ups (jet and
jet-compiled against it) are medians of per-round ratios, the engines taking turns in
every round.

Memory, on CUDA: the peak allocated bytes of the step. On the CPU: the growth of the
process's peak resident memory over one step (VmHWM reset through /proc/self/clear_refs,
glibc told to mmap every block of 64 KiB or more so that freed tensors leave the
resident set), which counts every engine alike, torch.func's included; and, where
saved-tensor hooks are allowed (not inside torch.func), the bytes saved for backward.
The CPU memory is measured in a child process (``--memory-probe``): mmap-ing every
block makes each fresh tensor page-fault, which doubles a step's time, so the timed
process keeps glibc's defaults.
GEMM time: the jet's matrix-product FLOPs (forward + 2x for backward) at the rate of a
2048^2 float32 matmul on this device; "step / GEMM time" is how far the step is from
doing only those matmuls at that rate.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.func import functional_call, hessian, vmap

from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet, func_jet
from pinn_sine.kernels import set_backend
from pinn_sine.nets import MLP, Finer, MetaSin, Sine

ACTS = {"siren": lambda: Sine(30.0), "finer": lambda: Finer(30.0), "metasin": lambda: MetaSin(K=10)}
JET_ENGINES = {"jet": forward_jet, "jet-compiled": forward_jet, "autograd": autograd_jet, "fwdrev": func_jet}
#: the kernel backend an engine runs under (pinn_sine.kernels.set_backend); the others the rule's
BACKEND_OF = {"jet-compiled": "compiled"}
BASELINES = ("autograd", "fwdrev")
#: the jet engines each row is summarised for (against the best baseline, memory, GEMM time)
JETS = ("jet", "jet-compiled")


def step_fn(engine: str, net: MLP, x: torch.Tensor):
    """One training step of ``engine`` (a name of the module docstring) as a closure."""
    names = tuple(f"x{i}" for i in range(x.shape[1]))
    spec = DerivativeSpec.laplacian(names)
    base, compiled = engine.removesuffix("+compile"), engine.endswith("+compile")
    if base in JET_ENGINES:
        fn = JET_ENGINES[base]

        def loss():
            jet = fn(net, x, names, spec)
            return (jet.laplacian(names) ** 2).mean() + (jet.u ** 2).mean()
    elif base == "hessian":
        params, buffers = dict(net.named_parameters()), dict(net.named_buffers())

        def u_single(p, xi):
            return functional_call(net, (p, buffers), (xi.unsqueeze(0),))[0, 0]

        def loss():
            H = vmap(hessian(u_single, argnums=1), in_dims=(None, 0))(params, x)
            lap = H.diagonal(dim1=-2, dim2=-1).sum(-1)
            return (lap ** 2).mean() + (net(x) ** 2).mean()
    else:
        raise SystemExit(f'unknown engine "{engine}"; use jet, jet-compiled, autograd, fwdrev, hessian, each '
                         'with "+compile"')
    if compiled:
        loss = torch.compile(loss)
    backend = BACKEND_OF.get(base)

    def step():
        previous = set_backend(backend)
        try:
            loss().backward()
        finally:
            set_backend(previous)
    return step


def matmul_flops(net: MLP, n: int, d: int) -> float:
    """The jet step's matrix-product FLOPs: (2 + d) streams through every layer after the
    first (the first layer's derivative streams are its weight columns), forward + 2x
    for the backward pass."""
    widths = [net.linears[0].in_features] + [lin.out_features for lin in net.linears]
    first = 2 * widths[0] * widths[1] * n
    rest = sum(2 * a * b for a, b in zip(widths[1:-1], widths[2:])) * n * (2 + d)
    return 3.0 * (first + rest)


def case(act, d, width, depth, n, device):
    """The benchmark's network and points for one row (seeded: a child process rebuilds them)."""
    torch.manual_seed(0)
    activation = ACTS[act]()
    omegas = {"first_omega": 3.0} if hasattr(activation, "omega") else {}
    net = MLP(d, 1, width, depth, activation=activation, **omegas).to(device)
    x = (torch.rand(n, d, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)
    return net, x


def measure(engines, act, d, width, depth, n, device, repeats):
    """Per engine: the median step time and the memory (peak growth, saved bytes), and
    the per-round ratios of every engine's time to the jet's."""
    net, x = case(act, d, width, depth, n, device)
    steps = {e: step_fn(e, net, x) for e in engines}
    reset = lambda: net.zero_grad(set_to_none=True)  # noqa: E731
    times, failed = time_rounds(steps, repeats, device, reset, f"{act} {d} {width} {n}")
    live = [e for e in engines if e not in failed]
    if device.type == "cuda":
        memory = {e: {"peak": peak_memory(steps[e], device, reset), "saved": float("nan")} for e in live}
    else:
        memory = memory_in_child(live, act, d, width, depth, n)
    out = {}
    for e in engines:
        if e in failed:
            out[e] = {"ms": float("nan"), "peak": float("nan"), "saved": float("nan")}
            continue
        out[e] = {"ms": statistics.median(times[e]) * 1e3, **memory[e]}
    live = [b for b in BASELINES if b in times]
    ratios = {}
    if live:
        best = [min(times[b][r] for b in live) for r in range(repeats)]
        ratios = {e: statistics.median(a / b for a, b in zip(best, times[e])) for e in times if e in JETS}
    return net, out, ratios


def time_rounds(steps: dict, repeats: int, device, reset, label: str) -> tuple[dict, dict]:
    """Warm every step up twice, then time ``repeats`` rounds in which the steps take
    turns, so load from other processes on a shared machine hits them alike. ``reset``
    runs after every call (zeroing the gradients). A step that raises in the warm-up
    (out of memory on the largest cases, a transform torch.compile cannot trace) is
    reported and left out.

    Returns (name -> seconds of each round, name -> the warm-up error of a failed step).
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    failed = {}
    for name, step in steps.items():
        try:
            for _ in range(2):  # warm-up (and compilation)
                step()
                reset()
        except Exception as err:  # noqa: BLE001 -- a failing engine is reported, not fatal
            failed[name] = err
            print(f"<!-- {name} {label}: {type(err).__name__}: {str(err).splitlines()[0][:160]} -->", flush=True)
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


def _read_status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _mmap_large_blocks() -> bool:
    """Tell glibc to mmap every block of 64 KiB or more (M_MMAP_THRESHOLD), so that a freed
    tensor leaves the resident set and the peak resident growth of a step measures what
    it allocated. Done at import, before any tensor exists (a block freed to the heap
    earlier would be reused without growing the resident set)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 16))
    except OSError:
        return False


#: set only in the child that measures CPU memory (see the module docstring)
_MMAP_SET = _mmap_large_blocks() if "--memory-probe" in sys.argv else False


def memory_in_child(engines, act, d, width, depth, n) -> dict:
    """Per engine {"peak", "saved"} in bytes, measured on the CPU by a child process of
    this script (``--memory-probe``) that mmaps every large block; nan where it failed."""
    probe = json.dumps({"engines": engines, "case": [act, d, width, depth, n]})
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-probe", probe],
                         capture_output=True, text=True)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"<!-- memory probe failed: {res.stderr.strip().splitlines()[-1:]} -->", flush=True)
        return {e: {"peak": float("nan"), "saved": float("nan")} for e in engines}


def memory_probe(request: str) -> int:
    """The child's side of :func:`memory_in_child`: warm every engine up, then measure
    the peak resident growth and the saved bytes of one step each; prints JSON."""
    spec = json.loads(request)
    net, x = case(*spec["case"], torch.device("cpu"))
    reset = lambda: net.zero_grad(set_to_none=True)  # noqa: E731
    out = {}
    for e in spec["engines"]:
        step = step_fn(e, net, x)
        for _ in range(2):
            step()
            reset()
        out[e] = {"peak": peak_memory(step, torch.device("cpu"), reset), "saved": saved_bytes(step, reset)}
    print(json.dumps(out))
    return 0


def peak_memory(step, device, reset) -> float:
    """Bytes: on CUDA the peak allocated during ``step``; on the CPU the growth of the peak
    resident set over it (module docstring), nan where that cannot be measured."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        mem = torch.cuda.max_memory_allocated() - base
        reset()
        return float(mem)
    if not _MMAP_SET:
        return float("nan")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        base = _read_status("VmRSS:")
        step()
        mem = _read_status("VmHWM:") - base
    except (OSError, RuntimeError):
        mem = float("nan")
    reset()
    return float(mem)


def saved_bytes(step, reset) -> float:
    """Bytes of the unique storages saved for backward during ``step`` (a saved-tensors
    hook); nan inside torch.func transforms, which refuse such hooks."""
    seen = {}

    def pack(t):  # unique storages: a tensor saved by two nodes counts once
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step()
        mem = float(sum(seen.values()))
    except RuntimeError:
        mem = float("nan")
    reset()
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


# ----- where the time goes -------------------------------------------------------------------
OP_GROUPS = (("GEMM", ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm")),
             ("sin/cos", ("sin", "cos", "sincos")),
             ("copies", ("cat", "stack", "copy_", "clone", "contiguous", "expand", "index", "select_backward",
                         "slice_backward", "cat_backward", "unbind", "to", "_to_copy", "empty_like", "zeros_like",
                         "fill_", "zero_", "narrow", "index_select")),
             ("elementwise", ("mul", "add", "sub", "neg", "div", "pow", "sum", "mean", "addcmul", "mul_", "add_",
                              "where", "sqrt", "exp", "copysign")))


def profile(act: str, d: int, width: int, n: int, device, engine: str = "jet") -> None:
    """The jet step's self time by op (top 15) and grouped into GEMMs, sin/cos, copies and
    other elementwise work, from torch.profiler over 5 steps."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    net, x = case(act, d, width, 3, n, device)
    step = step_fn(engine, net, x)
    for _ in range(2):
        step()
        net.zero_grad(set_to_none=True)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
            net.zero_grad(set_to_none=True)
    rows = [(e.key.removeprefix("aten::"), e.self_cpu_time_total / 5e3, e.count // 5) for e in prof.key_averages()
            if e.self_cpu_time_total > 0]
    rows.sort(key=lambda r: -r[1])
    total = sum(ms for _, ms, _ in rows)
    print(f"{engine} step, {act} {width}x3, d = {d}, {n} points, {torch.get_num_threads()} thread(s): "
          f"{total:.1f} ms of op self time per step\n")
    print("| op | ms / step | share | calls / step |\n|---|---|---|---|")
    for name, ms, calls in rows[:15]:
        print(f"| {name} | {ms:.2f} | {ms / total:.0%} | {calls} |")
    groups = {g: 0.0 for g, _ in OP_GROUPS}
    groups["compiled loops"] = 0.0
    groups["other"] = 0.0
    groups["activation nodes (own time)"] = 0.0
    for name, ms, _ in rows:
        base = name.split(".")[0].removesuffix("Backward0").lower()
        group = next((g for g, ops in OP_GROUPS if base in ops or base.rstrip("_") in ops or name in ops), "other")
        if name.endswith(("Jet", "JetBackward")):  # the autograd.Function nodes' Python and glue
            group = "activation nodes (own time)"
        elif name.startswith(("cpp_fused", "triton_", "## Call CompiledFxGraph", "Torch-Compiled Region")):
            group = "compiled loops"  # the compiled backend's fused programs (and their wrappers)
        groups[group] += ms
    print("\n| group | ms / step | share |\n|---|---|---|")
    for g, ms in groups.items():
        print(f"| {g} | {ms:.2f} | {ms / total:.0%} |")
    rate = gemm_ceiling(device)
    ideal = matmul_flops(net, n, d) / rate / 1e6
    print(f"\nthe jet's matmul FLOPs at the {rate:.0f} GFLOP/s of a 2048^2 matmul: {ideal:.1f} ms; "
          f"measured GEMM self time {groups['GEMM']:.1f} ms ({matmul_flops(net, n, d) / groups['GEMM'] / 1e6:.0f} "
          "GFLOP/s)")


# ----- whole training steps of the problems ----------------------------------------------------
PROBLEM_NAMES = ("poisson2d", "helmholtz2d", "helmholtz-point-source", "wave1d", "wave2d")


def problem_steps(device, repeats: int, width: int, n: int, engines: list[str], depth: int = 3,
                  names: tuple[str, ...] = PROBLEM_NAMES) -> None:
    """Whole training steps (sample once, every loss term, backward to the weights) of
    each PDE problem with SIREN width x depth, per engine (jet, jet-compiled, autograd,
    func = forward-over-reverse, each optionally "+compile"), the engines taking turns."""
    from pinn_sine.problems import PROBLEMS

    pairs = [(j, e) for j in engines if j in JETS for e in engines if e not in JETS]
    head = "| problem | streams (jet) | " + " | ".join(f"{e} [ms]" for e in engines) + " | " + \
        " | ".join(f"{j} vs {e}" for j, e in pairs) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in names:
        problem = PROBLEMS[name]()
        net = MLP(problem.in_dim, problem.out_dim, width, depth, activation=Sine(30.0),
                  first_omega=problem.default_first_omega).to(device)
        batch = {k: v.to(device) for k, v in problem.sample(n, torch.Generator().manual_seed(0)).items()}
        streams = max(1 + len(spec.directions()) + len(spec.pairs()) + len(spec.laplacian_groups())
                      for spec in problem.derivatives.values())

        def make(engine):
            base = engine.removesuffix("+compile")
            terms = torch.compile(problem.compute_losses) if engine.endswith("+compile") else problem.compute_losses
            backend, base = BACKEND_OF.get(base), "jet" if base in JETS else base

            def step():
                previous = set_backend(backend)
                try:
                    sum(terms(net, batch, base).values()).backward()
                finally:
                    set_backend(previous)
            return step

        steps = {e: make(e) for e in engines}
        times, _ = time_rounds(steps, repeats, device, lambda: net.zero_grad(set_to_none=True), name)
        med = {e: statistics.median(times[e]) * 1e3 if e in times else float("nan") for e in engines}
        ratio = [round_ratio(times, e, j) if e in times and j in times else float("nan") for j, e in pairs]
        print(f"| {name} | {streams} | " + " | ".join(f"{med[e]:.1f}" for e in engines) + " | "
              + " | ".join(f"{r:.2f}x" for r in ratio) + " |", flush=True)


def _case(text: str) -> tuple:
    """"act:d:width:points" -> (act, d, width, 3, points) for --cases."""
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in ACTS or not all(p.isdigit() for p in parts[1:]):
        raise SystemExit(f'--cases: "{text}" is not activation:d:width:points with activation one of '
                         f"{sorted(ACTS)}, e.g. siren:2:128:4096")
    return parts[0], int(parts[1]), int(parts[2]), 3, int(parts[3])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--full", action="store_true", help="the whole grid (widths 64-512, n 1k-64k)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peak-tflops", type=float, default=None, help="device fp32 peak, printed beside the rate")
    ap.add_argument("--engines", default=None,
                    help="comma-separated (default jet,jet-compiled,autograd,fwdrev,hessian; "
                         "with --problems jet,jet-compiled,autograd,func)")
    ap.add_argument("--problems", action="store_true",
                    help="time whole training steps of the PDE problems instead (SIREN, --width x 3, --points)")
    ap.add_argument("--profile", action="store_true",
                    help="profile the step of SIREN --width x 3 by op (--engines: jet and/or jet-compiled)")
    ap.add_argument("--jacobian", action="store_true", help="the Gauss-Newton Jacobian row (benchmarks/jacobian.py)")
    ap.add_argument("--width", type=int, default=128, help="with --problems and --profile")
    ap.add_argument("--depth", type=int, default=3, help="hidden layers, with --problems")
    ap.add_argument("--only", default=None, help="comma-separated problems, with --problems (default: all five)")
    ap.add_argument("--points", type=int, default=4096, help="points per step, with --problems and --profile")
    ap.add_argument("--dims", default="2", help="input dimensions, with --profile")
    ap.add_argument("--cases", default=None,
                    help="rows to run instead of the default grid, e.g. siren:2:128:4096,finer:3:128:4096 "
                         "(activation:d:width:points, depth 3)")
    ap.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # the memory child's request
    args = ap.parse_args(argv)
    if args.memory_probe:
        return memory_probe(args.memory_probe)
    for name in ("torch._dynamo", "torch._subclasses.fake_tensor", "torch._inductor"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # an engine that fails to compile is one line
    device = torch.device(args.device)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if args.jacobian:
        import jacobian
        return jacobian.main(["--repeats", str(args.repeats)])
    if args.profile:
        for engine in (args.engines or "jet").split(","):
            for d in (int(v) for v in args.dims.split(",")):
                profile("siren", d, args.width, args.points, device, engine)
        return 0
    if args.problems:
        engines = (args.engines or "jet,jet-compiled,autograd,func").split(",")
        print(f"device: {where}; SIREN {args.width}x{args.depth}, {args.points} interior points; median of "
              f"{args.repeats} steps, engines taking turns; jet vs e = median of per-round time(e) / time(jet)")
        names = tuple(args.only.split(",")) if args.only else PROBLEM_NAMES
        problem_steps(device, args.repeats, args.width, args.points, engines, args.depth, names)
        return 0
    engines = (args.engines or "jet,jet-compiled,autograd,fwdrev,hessian").split(",")
    if not any(e in JETS for e in engines) or not any(b in engines for b in BASELINES):
        raise SystemExit(f"--engines must include one of {JETS} and one of the baselines {BASELINES}")
    if args.cases:
        grid = [_case(text) for text in args.cases.split(",")]
    elif args.full:
        grid = [(a, d, w, 3, n) for a in ACTS for d in (2, 3) for w in (64, 128, 256, 512)
                for n in (1024, 4096, 16384, 65536)]
    else:
        grid = [("siren", 2, 128, 3, 4096), ("siren", 3, 128, 3, 4096), ("finer", 2, 128, 3, 4096),
                ("metasin", 2, 128, 3, 4096), ("siren", 2, 256, 3, 4096), ("siren", 2, 64, 3, 16384)]
    print(f"device: {where}; median of {args.repeats} steps (engines take turns; speed-up = median of the "
          "per-round ratios; best = the faster of autograd and fwdrev in each round); memory = "
          + ("peak allocated" if device.type == "cuda" else "peak resident growth of one step [MB]"))
    if args.peak_tflops:
        print(f"device fp32 peak: {args.peak_tflops} TFLOP/s")
    rate = gemm_ceiling(device)
    print(f"GEMM ceiling (a 2048^2 fp32 matmul here): {rate:.1f} GFLOP/s\n")
    jets = [e for e in engines if e in JETS]
    head = ("| act | d | width | n | " + " | ".join(f"{e} [ms]" for e in engines) + " | "
            + " | ".join(f"mem {e} [MB]" for e in engines) + " | "
            + " | ".join(f"**{e} vs best** | peak {e} / best | saved {e} / autograd | {e} / GEMM time" for e in jets)
            + " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    nan = float("nan")
    for act, d, w, depth, n in grid:
        net, res, ratios = measure(engines, act, d, w, depth, n, device, args.repeats)
        live = [b for b in BASELINES if b in res and res[b]["ms"] == res[b]["ms"]]
        best = min(live, key=lambda b: res[b]["ms"]) if live else None
        gemm_ms = matmul_flops(net, n, d) / rate / 1e6
        summary = []
        for e in jets:
            peak = res[e]["peak"] / res[best]["peak"] if best else nan
            saved = res[e]["saved"] / res["autograd"]["saved"] if "autograd" in res else nan
            summary.append(f"**{ratios.get(e, nan):.2f}x** | {peak:.2f} | {saved:.2f} | {res[e]['ms'] / gemm_ms:.2f}")
        print(f"| {act} | {d} | {w} | {n} | " + " | ".join(f"{res[e]['ms']:.1f}" for e in engines) + " | "
              + " | ".join(f"{res[e]['peak'] / 1e6:.0f}" for e in engines) + " | " + " | ".join(summary) + " |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
