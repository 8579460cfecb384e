"""When does the ``compiled`` kernel backend pay for its compilation? Break-even of
``pinn-sine solve`` runs on the CPU, native against compiled.

    OMP_NUM_THREADS=1 python benchmarks/breakeven.py            # 4 cases, 3 repeats, about 12 minutes
    OMP_NUM_THREADS=1 python benchmarks/breakeven.py --quick    # 1 repeat, 2 cases, about 2 minutes
    OMP_NUM_THREADS=1 python benchmarks/breakeven.py --cases poisson2d-finer   # FINER, about 2 minutes

Every measurement is a fresh child process (``--child``), so that nothing compiled is
left in memory: one per case, backend and repeat. Inductor also caches its compiled code
on disk between processes (``TORCHINDUCTOR_CACHE_DIR``, by default under /tmp), so each
repeat runs, per case,

  native          -- ``set_backend("native")`` (what ``auto`` picks on a CPU);
  compiled, cold  -- ``set_backend("compiled")`` with a fresh, empty cache folder: what
                     the first run on a machine (or after the cache is wiped) pays;
  compiled, warm  -- the same again on the folder the cold child filled: what a later
                     run of the same net pays (Dynamo still traces, Inductor's C++ is
                     reused).

Each child builds the problem and the CLI's net (``nets.build_net``: the first-layer omega
rule) and runs ``train(problem, net, stages=[stage], seed=0, progress=False,
log_every=1)``; "first step" is the history's "time" of step 1 (seconds from the start of
``train`` until the first step has finished, compilation included). The steady step
times come from the compiled children: after that first run they alternate blocks of
native and compiled steps on the same net (``set_backend`` between ``train`` calls, the
order swapped every round), so that both backends see the same load on a shared
machine; "step median" is the median of the blocks' median step times, the saving the
median of the blocks' native - compiled differences. The break-even

    N* = (first_compiled - first_native) / saving

is (to a step) the number of steps after which the compiled run has finished first
(medians over the repeats; "never" where compiled steps are not faster). The cold
overheads and savings printed last are what ``pinn_sine.kernels.dispatch.BREAK_EVEN_CASES``
holds, from which ``auto_backend`` decides.

The Gauss-Newton case runs a ``GaussNewton`` stage alone: its Jacobian is built by the
jet engine (``derivatives/jacobian.py``: one forward jet, one backward per residual
column), so the compiled nodes run there too; the child reports how many compiled
programs it built.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the cases: the CLI's default net on the default batch (float32), and the
#: Gauss-Newton recipe of the README (``pinn-sine solve helmholtz2d --width 32 --depth 2
#: --dtype float64 --batch 2000 --steps 500 --gn-steps 600``), its Adam and GN stages apart.
#: "steps": steady steps of the first run after the warm-up; "rounds" x 2 blocks of
#: "block" steps alternate the backends in a compiled child.
_SIREN = dict(activation="siren", width=128, depth=3, dtype="float32", stage="adam", batch=None)
_GN_NET = dict(activation="siren", width=32, depth=2, dtype="float64", batch=2000)
CASES = {
    "poisson2d": dict(_SIREN, problem="poisson2d", steps=30, rounds=10, block=10),
    "wave1d": dict(_SIREN, problem="wave1d", steps=20, rounds=6, block=8),
    "poisson2d-finer": dict(_SIREN, problem="poisson2d", activation="finer", steps=20, rounds=6, block=8),
    "helmholtz2d-f64": dict(_GN_NET, problem="helmholtz2d", stage="adam", steps=40, rounds=6, block=15),
    "helmholtz2d-f64-gn": dict(_GN_NET, problem="helmholtz2d", stage="gauss_newton", steps=10, rounds=4, block=5),
}
DEFAULT_CASES = ("poisson2d", "wave1d", "helmholtz2d-f64", "helmholtz2d-f64-gn")
QUICK_CASES = ("poisson2d", "helmholtz2d-f64-gn")
WARMUP = 5


def _steps(problem, net, spec: dict, count: int) -> list[float]:
    """Run ``count`` steps of the case's stage (a fresh stage, one ``train`` call); the
    seconds from the start of ``train`` to the end of each step."""
    from pinn_sine import train
    from pinn_sine.optim import Adam, GaussNewton

    batch = spec["batch"]
    stage = Adam(count) if spec["stage"] == "adam" else GaussNewton(count, batch=batch)
    result = train(problem, net, stages=[stage], batch=batch, seed=0, progress=False, log_every=1,
                   divergence=None)
    return [row["time"] for row in result.history]


def _median_step(times: list[float], skip: int) -> float:
    """The median difference of consecutive step end times, after ``skip`` steps."""
    return statistics.median(b - a for a, b in zip(times[skip:], times[skip + 1:]))


def child(spec: dict) -> dict:
    """One measurement in this (fresh) process: the time to the end of the first step
    (and the steady steps of that run) under ``spec["backend"]``; in a compiled child,
    then, alternating blocks of native and compiled steps on the same net."""
    import torch

    from pinn_sine.kernels import compiled, set_backend
    from pinn_sine.nets import build_net
    from pinn_sine.problems import PROBLEMS

    problem = PROBLEMS[spec["problem"]]()
    net = build_net(problem, spec["activation"], width=spec["width"], depth=spec["depth"], seed=0)
    if spec["dtype"] == "float64":
        net = net.double()
    set_backend(spec["backend"])
    times = _steps(problem, net, spec, 1 + WARMUP + spec["steps"])
    out = {"first": times[0], "step": _median_step(times, WARMUP), "programs": len(compiled._PROGRAMS),
           "batch": problem.default_batch if spec["batch"] is None else spec["batch"],
           "threads": torch.get_num_threads(), "paired": []}
    if spec["backend"] == "compiled":
        for r in range(spec["rounds"]):
            block = {}
            for backend in (("native", "compiled") if r % 2 == 0 else ("compiled", "native")):
                set_backend(backend)
                block[backend] = _median_step(_steps(problem, net, spec, 1 + spec["block"]), 0)
            out["paired"].append(block)
    return out


def run_child(case: str, backend: str, cache: str, threads: int) -> dict:
    """:func:`child` in a fresh interpreter with ``TORCHINDUCTOR_CACHE_DIR=cache``."""
    spec = dict(CASES[case], backend=backend)
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {case}/{backend} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def break_even(first_c: float, first_n: float, saving: float) -> float:
    """Steps after which the compiled run has finished first (inf: never), from the first
    steps' times and the per-step saving (native minus compiled)."""
    if saving <= 0:
        return float("inf")
    return max(0.0, (first_c - first_n) / saving)


def summary(cells: dict) -> dict:
    """Medians over the repeats of one case: first step and steady step per row, the
    per-step saving (median of the paired native - compiled differences) and N*."""
    paired = [b for key in ("cold", "warm") for r in cells[key] for b in r["paired"]]
    saving = statistics.median(b["native"] - b["compiled"] for b in paired)
    out = {"saving": saving}
    for key in ("native", "cold", "warm"):
        first = statistics.median(r["first"] for r in cells[key])
        if key == "native":
            step = statistics.median(b["native"] for b in paired)
        else:
            step = statistics.median(b["compiled"] for r in cells[key] for b in r["paired"])
        out[key] = {"first": first, "firsts": [r["first"] for r in cells[key]], "step": step}
    for key in ("cold", "warm"):
        out[key]["n_star"] = break_even(out[key]["first"], out["native"]["first"], saving)
    return out


def table(rows: dict) -> str:
    """The markdown table of the medians over the repeats."""
    out = ["| case | backend | cache | first step [s] | step median [ms] | saving [ms/step] | break-even N* [steps] |",
           "|---|---|---|---|---|---|---|"]
    for case, cells in rows.items():
        spec = CASES[case]
        s = summary(cells)
        batch = cells["native"][0]["batch"]
        label = (f"{spec['problem']} {spec['activation']} {spec['width']}x{spec['depth']} {spec['dtype']}, "
                 f"batch {batch}, {'Adam' if spec['stage'] == 'adam' else 'Gauss-Newton'}")
        for key, backend, cache in (("native", "native", "—"), ("cold", "compiled", "cold"),
                                    ("warm", "compiled", "warm")):
            cell = s[key]
            firsts = cell["firsts"]
            rng = f" ({min(firsts):.1f}-{max(firsts):.1f})" if len(firsts) > 1 else ""
            saving, n = "", ""
            if key != "native":
                saving = f"{s['saving'] * 1e3:.1f}"
                n = "never" if cell["n_star"] == float("inf") else f"{cell['n_star']:.0f}"
            out.append(f"| {label} | {backend} | {cache} | {cell['first']:.2f}{rng} | {cell['step'] * 1e3:.1f} | "
                       f"{saving} | {n} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated from {sorted(CASES)} (default: {','.join(DEFAULT_CASES)})")
    parser.add_argument("--repeats", type=int, default=3, help="children per case and backend")
    parser.add_argument("--quick", action="store_true", help=f"one repeat of {','.join(QUICK_CASES)}, "
                        "fewer steady steps")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="OMP_NUM_THREADS of the children (default: this process's, else 1)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write every child's numbers here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return
    cases = (args.cases.split(",") if args.cases else list(QUICK_CASES if args.quick else DEFAULT_CASES))
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; the cases are {sorted(CASES)}.")
    repeats = 1 if args.quick else args.repeats
    if args.quick:
        for c in cases:
            CASES[c].update(steps=min(CASES[c]["steps"], 10), rounds=2)
    rows: dict[str, dict[str, list]] = {c: {"native": [], "cold": [], "warm": []} for c in cases}
    t0 = time.perf_counter()
    for rep in range(repeats):
        for case in cases:
            with tempfile.TemporaryDirectory(prefix="breakeven-inductor-") as cache:
                for key, backend in (("native", "native"), ("cold", "compiled"), ("warm", "compiled")):
                    r = run_child(case, backend, cache, args.threads)
                    rows[case][key].append(r)
                    paired = ""
                    if r["paired"]:
                        n, c = (statistics.median(b[k] for b in r["paired"]) * 1e3 for k in ("native", "compiled"))
                        paired = f", paired native/compiled {n:.1f}/{c:.1f} ms"
                    print(f"[{time.perf_counter() - t0:6.0f} s] repeat {rep + 1}/{repeats} {case:18s} {key:6s} "
                          f"first {r['first']:6.2f} s, step {r['step'] * 1e3:6.1f} ms{paired} "
                          f"({r['programs']} compiled programs)", flush=True)
    print(f"\n{args.threads} thread(s), {repeats} child process(es) per cell; first step: median (range); "
          f"steps: medians of the alternating blocks in the compiled children; "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print(table(rows))
    print("\ncold compile overhead [s] and saving [s/step] (pinn_sine.kernels.dispatch.BREAK_EVEN_CASES):")
    for case, cells in rows.items():
        s = summary(cells)
        print(f"  {case}: {s['cold']['first'] - s['native']['first']:.1f}, {s['saving']:.4f}"
              f" (warm: {s['warm']['first'] - s['native']['first']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "repeats": repeats, "cases": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
