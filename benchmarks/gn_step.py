"""One Gauss-Newton step against the parameter count: time, peak memory and progress of
each descent of :class:`~pinn_sine.optim.GaussNewton` (issue 26).

    OMP_NUM_THREADS=2 python benchmarks/gn_step.py --out runs/gn_step
    OMP_NUM_THREADS=2 python benchmarks/gn_step.py --widths 21,34 --repeats 1   # a quick look

Every case is a float64 SIREN (``--depth`` hidden layers of a width from ``--widths``;
depth 3 and widths 21, 34, 49, 70 give p = 1009, 2517, 5097, 10221) on Poisson2D (the
default two-mode solution) with ``--rows`` residual rows (interior points rows / 1.25,
plus a quarter as many boundary points), run in its own child process so its memory
can be read: the child loads the network (pretrained by ``--adam`` Adam steps on 2000
points, once per width, so the steps start where Gauss-Newton is used), draws the
batch, reads its peak RSS (the baseline), runs one warm-up and ``--repeats`` timed
steps of the real stage (``train(..., stages=[GaussNewton(...)])``) and reads its peak
RSS again: "peak MiB" is the difference, the step's own high-water mark.

The descents: "dense" (J formed, Cholesky of the p x p system; skipped with
"skipped: needs X GiB" above ``--max-gib``, and with a single timed step where one step
is estimated above ``--slow-s``), "cg" with the Nystrom (rank 50) and the diagonal
preconditioner, the CG solver capped at 20 and at 100 iterations (the iterations and
relative residual it reached are reported), "sketched" with two row/column settings,
and "dual" (J J^T from the factors, momentum 0) on ``--dual-rows`` rows only: its
N x N system at 16k rows would be 2 GiB and a 16k^3/3-flop Cholesky per step.

The search is the default Nielsen rule with initial damping ``--damping`` (1: from the
pretrained state the default 1e-3 rejects the first three or four steps of every
descent, which would time rejected steps; mu then shrinks by up to 3x per accepted step,
so the timed steps are damped ones). Reported per case: the median step time, the peak
memory, the median CG iterations and relative residual, the median gain ratio
rho = actual / predicted decrease and the median loss ratio L(after) / L(before) of the
timed steps (1 for a rejected step), the loss ratio of the first timed step (the same
state and damping for every descent that accepted its warm-up), and how many were
accepted. Prints a markdown table and writes ``results.md`` and ``results.csv`` to
``--out``; every child also appends its row to ``OUT/rows.jsonl`` (``--from-rows``
rebuilds the table from it, e.g. after runs of several ``--widths``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROWS_PER_POINT = 1.25  # Poisson2D: a boundary point for every four interior points


def params_of(width: int, depth: int, d_in: int = 2) -> int:
    return d_in * width + width + (depth - 1) * (width * width + width) + width + 1


def cases(args) -> list[dict]:
    """The (descent, settings) grid of one width, in the order of the table."""
    out = [{"label": "dense", "descent": "dense", "solver": "auto"}]
    for pre in ("nystrom", "diagonal"):
        for it in (20, 100):
            rank = {"rank": 50} if pre == "nystrom" else {}
            out.append({"label": f"cg {pre}{' 50' if rank else ''}, max_iter {it}",
                        "descent": {"name": "cg", "preconditioner": pre, **rank},
                        "solver": {"name": "cg", "max_iter": it}})
    for rows, cols in ((4096, 1024), (8192, 2048)):
        out.append({"label": f"sketched {rows}x{cols}", "descent": {"name": "sketched", "rows": rows, "cols": cols},
                    "solver": "auto"})
    out.append({"label": "dual (momentum 0)", "descent": {"name": "dual", "momentum": 0.0}, "solver": "auto",
                "rows": args.dual_rows})
    return out


def dense_estimate(rows: int, p: int) -> tuple[float, float]:
    """Bytes (J, the p x p system and its factor) and seconds (N p^2 multiply-adds for
    J^T J plus p^3 / 3 for Cholesky at 5e10 a second: 2.1 s at p = 2.5k, N = 16k on two
    threads of this machine) of one dense step."""
    m = min(rows, p)
    return 8.0 * (rows * p + 2 * m * m), (rows * p * p + m**3 / 3) / 5e10


def maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def pretrained(args, width: int) -> Path:
    return Path(args.out) / f"pretrained_w{width}_d{args.depth}_adam{args.adam}.pt"


def build_net(args, width: int):
    from pinn_sine.nets import MLP, Sine

    return MLP(2, 1, width, args.depth, activation=Sine(30.0), first_omega=4.0, seed=0).double()


def pretrain(args, width: int) -> None:
    """Adam steps on 2000 points; saves the network (the start of every step case)."""
    import torch

    from pinn_sine import train
    from pinn_sine.optim import Adam
    from pinn_sine.problems import Poisson2D

    torch.set_num_threads(args.threads)
    net = build_net(args, width)
    if args.adam:
        result = train(Poisson2D(), net, stages=[Adam(args.adam, lr=1e-3)], batch=2000, seed=0, progress=False,
                       log_every=args.adam)
        print(f"  pretrained width {width}: {args.adam} Adam steps, loss {result.history[-1]['loss']:.3e}",
              flush=True)
    torch.save(net.state_dict(), pretrained(args, width))


def child(args, case: dict) -> dict:
    """One case in this process; returns its row."""
    import torch

    from pinn_sine import train
    from pinn_sine.optim import GaussNewton
    from pinn_sine.problems import Poisson2D

    torch.set_num_threads(args.threads)
    problem = Poisson2D()
    net = build_net(args, case["width"])
    net.load_state_dict(torch.load(pretrained(args, case["width"])))
    batch = round(case["rows"] / ROWS_PER_POINT)
    problem.sample(batch, torch.Generator().manual_seed(0))  # a batch of this size, in the baseline
    base = maxrss_bytes()
    stage = GaussNewton(1 + case["repeats"], batch=batch, descent=case["descent"], solver=case["solver"],
                        search={"name": "nielsen", "damping": args.damping}, max_memory=args.max_gib * 2**30)
    t0 = time.perf_counter()
    result = train(problem, net, stages=[stage], batch=batch, seed=0, log_every=1, progress=False)
    wall = time.perf_counter() - t0
    peak = maxrss_bytes() - base
    n_rows = sum(v.shape[0] for k, v in stage.points.items() if k in problem.derivatives)
    hist = [h for h in result.history if h.get("phase") == "gauss_newton"]
    losses = [h["loss"] for h in hist]
    timed = hist[1:]  # after the warm-up
    ratios = [b / a for a, b in zip(losses[:-1], losses[1:])]

    def med(key):
        vals = [h[key] for h in timed if key in h]
        return statistics.median(vals) if vals else None

    return {"descent": case["descent"] if isinstance(case["descent"], str) else case["descent"]["name"],
            "settings": case["label"], "p": sum(q.numel() for q in net.parameters()), "N": n_rows,
            "width": case["width"], "depth": args.depth, "threads": args.threads, "steps_timed": len(timed),
            "step_s": med("step_time"), "peak_mib": peak / 2**20, "cg_iterations": med("cg_iterations"),
            "cg_residual": med("cg_residual"), "gain": med("gain"),
            "loss_ratio": statistics.median(ratios) if ratios else None,
            "loss_ratio_first": ratios[0] if ratios else None,  # the first timed step: the same for every case
            "accepted": f"{sum(int(h['accepted']) for h in timed)}/{len(timed)}",
            "loss_end": losses[-1], "wall_s": wall,
            "note": case.get("note", "")}


def fmt(v, spec: str) -> str:
    return "-" if v is None or v == "" else format(v, spec)


def markdown(rows: list[dict], args) -> str:
    lines = [f"One Gauss-Newton step on Poisson2D, float64 SIREN depth {args.depth}, {args.threads} thread(s), "
             f"median of {args.repeats} steps after one warm-up, from {args.adam} Adam steps, Nielsen damping "
             f"{args.damping:g} at the warm-up", "",
             "| descent | settings | p | N | step s | peak MiB | CG iterations / residual | gain rho | "
             "loss ratio | first timed step's loss ratio | accepted | note |", "|---" * 12 + "|"]
    for r in rows:
        cg = (f"{r['cg_iterations']:.0f} / {r['cg_residual']:.1e}" if r.get("cg_iterations") is not None else "-")
        lines.append(f"| {r['descent']} | {r['settings']} | {r['p']} | {r['N']} | {fmt(r.get('step_s'), '.3g')} | "
                     f"{fmt(r.get('peak_mib'), '.0f')} | {cg} | {fmt(r.get('gain'), '.3g')} | "
                     f"{fmt(r.get('loss_ratio'), '.3g')} | {fmt(r.get('loss_ratio_first'), '.3g')} | "
                     f"{r.get('accepted', '-')} | {r.get('note', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--widths", default="21,34,49,70", help="SIREN widths (depth 3: p = 1k, 2.5k, 5k, 10k)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers")
    parser.add_argument("--rows", type=int, default=16000, help="residual rows N of the batch")
    parser.add_argument("--dual-rows", type=int, default=2000, help="residual rows of the dual descent's batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every child")
    parser.add_argument("--max-gib", type=float, default=8.0, help="skip a dense step estimated above this")
    parser.add_argument("--slow-s", type=float, default=20.0,
                        help="a dense step estimated above this many seconds is timed once")
    parser.add_argument("--adam", type=int, default=300, help="Adam steps before the Gauss-Newton steps")
    parser.add_argument("--damping", type=float, default=1.0, help="the Nielsen search's initial damping")
    parser.add_argument("--only", default=None, help="comma-separated descents to run (dense, cg, sketched, dual)")
    parser.add_argument("--out", default="runs/gn_step")
    parser.add_argument("--from-rows", action="store_true",
                        help="only rebuild the table from the rows the children appended to OUT/rows.jsonl")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pretrain", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pretrain is not None:
        pretrain(args, args.pretrain)
        return 0
    if args.child is not None:
        row = child(args, json.loads(args.child))
        with open(Path(args.out) / "rows.jsonl", "a") as fh:  # kept if the parent is stopped
            fh.write(json.dumps(row) + "\n")
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    if args.repeats < 1 or args.threads < 1 or args.depth < 1:
        parser.error("--repeats, --threads and --depth must be >= 1.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = None if args.only is None else set(args.only.split(","))
    passthrough = ["--depth", str(args.depth), "--threads", str(args.threads), "--adam", str(args.adam),
                   "--damping", str(args.damping), "--max-gib", str(args.max_gib), "--out", args.out]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(args.threads))}
    print(f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, torch threads {args.threads}", flush=True)
    rows = []
    if args.from_rows:
        rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    for width in ([] if args.from_rows else (int(w) for w in args.widths.split(","))):
        if not pretrained(args, width).exists():
            subprocess.run([sys.executable, __file__, "--pretrain", str(width), *passthrough], env=env, check=True)
        p = params_of(width, args.depth)
        for case in cases(args):
            name = case["descent"] if isinstance(case["descent"], str) else case["descent"]["name"]
            if only is not None and name not in only:
                continue
            n = case.get("rows", args.rows)
            case = {**case, "width": width, "rows": n, "repeats": args.repeats}
            if name == "dense":
                need, seconds = dense_estimate(n, p)
                if need > args.max_gib * 2**30:
                    row = {"descent": name, "settings": case["label"], "p": p, "N": n,
                           "note": f"skipped: needs {need / 2**30:.1f} GiB"}
                    print(row["note"], flush=True)
                    rows.append(row)
                    continue
                if seconds > args.slow_s:
                    case["repeats"] = 1
                    case["note"] = f"1 timed step (estimated {seconds:.0f} s)"
            if name == "dual":
                case["note"] = f"N = {n} only (16k rows: a 2 GiB J J^T, 16k^3/3 flops per Cholesky)"
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(case), *passthrough], env=env,
                                  capture_output=True, text=True)
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not line:
                err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                row = {"descent": name, "settings": case["label"], "p": p, "N": n, "note": f"failed: {err}"}
            else:
                row = json.loads(line[0][len("RESULT "):])
            rows.append(row)
            print(f"{row['settings']:>32} p={row['p']:>6} N={row['N']:>6}: step {fmt(row.get('step_s'), '.3g')} s, "
                  f"peak {fmt(row.get('peak_mib'), '.0f')} MiB, cg {row.get('cg_iterations')} / "
                  f"{fmt(row.get('cg_residual'), '.1e')}, gain {fmt(row.get('gain'), '.3g')}, loss ratio "
                  f"{fmt(row.get('loss_ratio'), '.3g')}, accepted {row.get('accepted')} {row.get('note', '')}",
                  flush=True)
    write_table(out, rows, args)
    return 0


def write_table(out: Path, rows: list[dict], args) -> None:
    table = markdown(rows, args)
    print("\n" + table)
    (out / "results.md").write_text(table + "\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {out}/results.md, results.csv")


if __name__ == "__main__":
    sys.exit(main())
