"""Expected wall time and result of every command the README shows, on this machine.

    python benchmarks/commands.py                 # all but the long ones (compare, --time-limit)
    python benchmarks/commands.py --long          # those too (about 30 minutes more)
    python benchmarks/commands.py --only wave2d   # the commands whose text contains "wave2d"
    python benchmarks/commands.py --short --long  # every command, shortened (tests/test_readme_commands.py)

The commands are read from the README itself (the bash blocks of its "Command line"
section, up to "Problems"), so the table and the README cannot drift apart. Runs each
command as a user would, exactly as written (``python -m pinn_sine.cli ...``,
torchrun through ``python -m torch.distributed.run``; the CLI's default of one thread
unless the command sets another), one after another in a scratch folder that holds a
copy of ``examples/``, and prints a markdown table: the command, its wall time
(including the reference, which the first run of a problem computes and later runs read
from the cache; the cache is a fresh folder, so every first run pays it) and its result:
the final relative L2 error of a ``solve`` (against the exact solution too where there
is one, and PSNR for inpainting), the reference's error for ``reference``, the best
cell of a ``compare``, the files of an ``export``. ``--short`` divides every step count
and time budget of a command by 1000 (at least 1 step) and gives a ``solve`` without
``--steps`` 2 Adam steps: every command then runs in seconds, which checks that the
README's commands run as written, in order, in a fresh folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: options whose value is a step count or a time budget (--short divides them by 1000)
BUDGETS = ("--steps", "--lbfgs-steps", "--gn-steps", "--seconds", "--time-limit")


def readme_commands(readme: Path = README) -> list[tuple[str, bool]]:
    """The README's commands in order, as ``(command, long?)``: every line of the bash
    blocks between "## Command line" and "## Problems", comments dropped. Long: compare
    and --time-limit runs."""
    text = readme.read_text()
    section = text[text.index("## Command line"):text.index("## Problems")]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                command = shlex.join(argv)
                commands.append((command, " compare " in f" {command} " or "--time-limit" in argv))
    return commands


def shorten(command: str) -> str:
    """``command`` with every step count and time budget divided by 1000 (steps at least
    1), and ``--steps 2`` added to a ``solve`` that gives none (nor ``--stage``, whose
    steps stay: such a command carries a ``--time-limit``)."""
    argv = shlex.split(command)
    for k, token in enumerate(argv[:-1]):
        if token in BUDGETS:
            value = float(argv[k + 1]) / 1000
            argv[k + 1] = f"{value:g}" if token in ("--seconds", "--time-limit") else str(max(1, int(value)))
    if _subcommand(argv) == "solve" and "--steps" not in argv and "--stage" not in argv:
        argv += ["--steps", "2"]
    return shlex.join(argv)


def _subcommand(argv: list[str]) -> str:
    """The pinn-sine subcommand of a command line (after torchrun's options and --module)."""
    args = argv[argv.index("pinn_sine.cli") + 1:] if argv[0] == "torchrun" else argv[1:]
    it = iter(args)
    for token in it:
        if token == "--module":
            next(it, None)
        elif not token.startswith("-"):
            return token
    return ""


def _cli_args(command: str) -> list[str]:
    """The command's pinn-sine arguments, from "pinn-sine" on (torchrun's launcher options
    dropped)."""
    argv = shlex.split(command)
    return ["pinn-sine"] + argv[argv.index("pinn_sine.cli") + 1:] if argv[0] == "torchrun" else argv


def _argv(command: str) -> list[str]:
    """What runs: ``python -m pinn_sine.cli ...`` (or ``python -m torch.distributed.run ...``
    for torchrun), with --quiet on solve."""
    argv = shlex.split(command)
    head = [sys.executable, "-m", "torch.distributed.run"] + argv[1:] if argv[0] == "torchrun" else \
        [sys.executable, "-m", "pinn_sine.cli"] + argv[1:]
    return head + (["--quiet"] if _subcommand(argv) == "solve" else [])


def _cell_name(cell: dict) -> str:
    return "/".join(cell[k] for k in ("problem", "activation", "constraint") if cell.get(k))


def result_of(command: str, folder: Path, stdout: str) -> str:
    """The result a user reads off the command: errors from metrics.json for solve, the
    printed line for reference and export, the best cell for compare."""
    argv = _cli_args(command)
    sub = _subcommand(argv)
    if sub == "solve":
        found = re.search(r"^run folder: (.+)$", stdout, flags=re.M)
        if found is None:
            return stdout.strip().splitlines()[-1][:160] if stdout.strip() else ""
        out = found.group(1)
        metrics = json.loads((folder / out / "metrics.json").read_text())
        parts = []
        if "rel_l2_exact" in metrics:
            parts.append(f"{metrics['rel_l2_exact']:.2e} vs exact")
        parts.append(f"{metrics['rel_l2']:.2e} vs reference")
        if "psnr_region" in metrics:
            parts.append(f"PSNR {metrics['psnr_region']:.1f} dB on the missing pixels")
        return ", ".join(parts)
    lines = [line for line in stdout.splitlines() if line.strip()]
    if sub == "compare":
        table = folder / argv[argv.index("--out") + 1] / "results.csv"
        if not table.exists():
            return lines[-1] if lines else ""
        with open(table, newline="") as fh:
            cells = list(csv.DictReader(fh))
        shown = "; ".join(f"{_cell_name(c)} {float(c['rel_l2']):.2e}" for c in cells[:4])
        return f"{len(cells)} cells" + (f": {shown}" if len(cells) <= 4 else "")
    if sub == "problems":
        problems = sum(1 for line in lines if not line.startswith(" ") and ": " in line.split(" -- ")[0])
        return f"{sum(1 for line in lines if line.startswith('  --'))} parameters of {problems} problems"
    return lines[-1][:160] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--long", action="store_true", help="also the long commands (compare, --time-limit 600)")
    parser.add_argument("--only", default=None, help="only the commands containing this text")
    parser.add_argument("--keep", default=None, help="run in this folder (kept) instead of a temporary one")
    parser.add_argument("--short", action="store_true", help="every step count and time budget / 1000")
    args = parser.parse_args(argv)
    chosen = [c for c, long in readme_commands() if (args.long or not long) and (args.only is None or args.only in c)]
    if args.short:
        chosen = [shorten(c) for c in chosen]
    folder = Path(args.keep or tempfile.mkdtemp(prefix="pinn-sine-commands-"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "examples", folder / "examples", dirs_exist_ok=True)
    env = {**os.environ, "PINN_SINE_CACHE": str(folder / "cache"), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
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
