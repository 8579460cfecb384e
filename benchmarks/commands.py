"""Expected wall time and result of every command the README shows, on this machine.

    python benchmarks/commands.py                 # all but the long ones (compare, --time-limit 600)
    python benchmarks/commands.py --long          # those too (about 30 minutes more)
    python benchmarks/commands.py --only wave2d   # the commands whose text contains "wave2d"

Runs each command as a user would (``python -m pinn_sine.cli ...``, torchrun through
``python -m torch.distributed.run``; all cores, no
OMP_NUM_THREADS override unless the README's command sets one), one after another in a
scratch folder, and prints a markdown table: the command, its wall time (including the
reference, which the first run of a problem computes and later runs read from the cache;
the cache is a fresh folder, so every first run pays it) and its result: the final
relative L2 error of a ``solve`` (against the exact solution too where there is one,
and PSNR for inpainting), the reference's error for ``reference``, the best cell of a
``compare``, the files of an ``export``. The README's "expected time and result" table
comes from this script.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (command as the README prints it, long?) -- run in order: later ones use earlier run folders.
COMMANDS = [
    ("pinn-sine problems", False),
    ("pinn-sine solve poisson2d --activation siren --steps 2000 --out runs/x", False),
    ("pinn-sine solve poisson2d --steps 3000 --lbfgs-steps 500 --lbfgs-batch 4096 --out runs/lbfgs", False),
    ("pinn-sine solve helmholtz2d --width 32 --depth 2 --dtype float64 --batch 2000 --steps 500 --gn-steps 600 "
     "--out runs/gn", False),
    ("pinn-sine solve wave2d --t-max 0.4 --steps 5000 --out runs/wave2d", False),
    ("pinn-sine solve helmholtz-point-source --velocity square --omega 10 --out runs/point", False),
    ("pinn-sine solve inpainting --image camera --mask random:0.5 --prior hessian --out runs/inpaint", False),
    ("pinn-sine solve wave1d --weighting gradnorm --rad --out runs/wave1d-rad", False),
    ("torchrun --nproc_per_node=2 -m pinn_sine.cli solve wave1d --out runs/ddp", False),
    ("pinn-sine solve wave1d --constraint hard --out runs/wave1d-hard", False),
    ("pinn-sine reference poisson2d --out poisson.h5", False),
    ("pinn-sine export runs/x --format vtk", False),
    ("pinn-sine solve --config runs/x/config.json --seed 1 --out runs/x-seed1", False),
    ("pinn-sine solve --resume runs/x --steps 4000", False),
    ("pinn-sine solve poisson2d --out runs/x --overwrite", False),
    ("pinn-sine compare --problems helmholtz2d --activations siren --constraints soft,hard --seconds 60 "
     "--out runs/compare-hard", True),
    ("pinn-sine compare --seconds 30 --jobs 2 --out runs/compare", True),
    ("pinn-sine solve wave2d --steps 100000 --time-limit 600 --out runs/wave2d-long", True),
]


def _cli_args(command: str) -> list[str]:
    """The command's pinn-sine arguments, from "pinn-sine" on (torchrun's launcher options
    dropped), so that [1] is the subcommand."""
    argv = shlex.split(command)
    return ["pinn-sine"] + argv[argv.index("pinn_sine.cli") + 1:] if argv[0] == "torchrun" else argv


def _argv(command: str) -> list[str]:
    """What runs: ``python -m pinn_sine.cli ...`` (or ``python -m torch.distributed.run ...``
    for torchrun), with --quiet on solve."""
    argv = shlex.split(command)
    head = [sys.executable, "-m", "torch.distributed.run"] + argv[1:] if argv[0] == "torchrun" else \
        [sys.executable, "-m", "pinn_sine.cli"] + argv[1:]
    return head + (["--quiet"] if _cli_args(command)[1] == "solve" else [])


def _cell_name(cell: dict) -> str:
    return "/".join(cell[k] for k in ("problem", "activation", "constraint") if cell.get(k))


def result_of(command: str, folder: Path, stdout: str) -> str:
    """The result a user reads off the command: errors from metrics.json for solve, the
    printed line for reference and export, the best cell for compare."""
    argv = _cli_args(command)
    if argv[1] == "solve":
        out = argv[argv.index("--out") + 1] if "--out" in argv else argv[argv.index("--resume") + 1]
        metrics = json.loads((folder / out / "metrics.json").read_text())
        parts = [f"rel L2 {metrics['rel_l2']:.2e}"]
        if "rel_l2_exact" in metrics:
            parts.append(f"{metrics['rel_l2_exact']:.2e} vs exact")
        if "psnr_region" in metrics:
            parts.append(f"PSNR {metrics['psnr_region']:.1f} dB on the missing pixels")
        return ", ".join(parts)
    lines = [line for line in stdout.splitlines() if line.strip()]
    if argv[1] == "compare":
        table = folder / argv[argv.index("--out") + 1] / "results.csv"
        if not table.exists():
            return lines[-1] if lines else ""
        with open(table, newline="") as fh:
            cells = list(csv.DictReader(fh))
        shown = "; ".join(f"{_cell_name(c)} {float(c['rel_l2']):.2e}" for c in cells[:4])
        return f"{len(cells)} cells" + (f": {shown}" if len(cells) <= 4 else "")
    if argv[1] == "problems":
        problems = sum(1 for line in lines if not line.startswith(" ") and ": " in line.split(" -- ")[0])
        return f"{sum(1 for line in lines if line.startswith('  --'))} parameters of {problems} problems"
    return lines[-1][:160] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--long", action="store_true", help="also the long commands (compare, --time-limit 600)")
    parser.add_argument("--only", default=None, help="only the commands containing this text")
    parser.add_argument("--keep", default=None, help="run in this folder (kept) instead of a temporary one")
    args = parser.parse_args(argv)
    chosen = [c for c, long in COMMANDS if (args.long or not long) and (args.only is None or args.only in c)]
    folder = Path(args.keep or tempfile.mkdtemp(prefix="pinn-sine-commands-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PINN_SINE_CACHE": str(folder / "cache"), "PYTHONUNBUFFERED": "1"}
    env.pop("OMP_NUM_THREADS", None)
    print(f"{len(chosen)} commands in {folder}, {os.cpu_count()} CPUs\n", flush=True)
    rows = []
    for command in chosen:
        t0 = time.perf_counter()
        done = subprocess.run(_argv(command), cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            result = f"FAILED ({done.returncode}): {(done.stderr.strip().splitlines() or [''])[-1][:160]}"
        else:
            result = result_of(command, folder, done.stdout)
        rows.append((command, wall, result))
        print(f"{wall:7.1f} s  {command}\n          {result}", flush=True)
    print("\n| command | time | result |\n|---|---|---|")
    for command, wall, result in rows:
        print(f"| `{command}` | {wall:.0f} s | {result} |")
    return 0 if all(not r.startswith("FAILED") for _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
