"""pinn-sine compare: the grid, its summaries, resuming, errors."""
from __future__ import annotations

import csv
import json
import math
import sys

import pytest

from pinn_sine.cli import main
from pinn_sine.compare import compare, markdown_table


def test_compare_writes_summaries_and_resumes(tmp_path):
    out = tmp_path / "cmp"
    rows = compare(["poisson2d"], ["siren", "tanh"], [0], steps=15, width=16, depth=2, out=str(out),
                   progress=False)
    assert {(r["activation"], r["seed"]) for r in rows} == {("siren", 0), ("tanh", 0)}
    with open(out / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 and {"problem", "activation", "seed", "steps", "wall_s", "rel_l2"} <= set(table[0])
    md = (out / "results.md").read_text()
    assert md.count("**") == 2  # one best per problem
    assert (out / "errors.png").stat().st_size > 0
    assert any((out / "best" / "poisson2d").iterdir())
    cell = out / "cells" / "poisson2d__siren__s0.json"
    before = cell.stat().st_mtime_ns
    again = compare(["poisson2d"], ["siren", "tanh"], [0], steps=15, width=16, depth=2, out=str(out),
                    progress=False)
    assert cell.stat().st_mtime_ns == before  # finished cells are skipped
    assert again == rows
    assert not list(out.rglob("*.tmp"))


def test_markdown_table_marks_the_best_and_the_spread():
    rows = [{"problem": "p", "activation": "siren", "seed": s, "rel_l2": v} for s, v in ((0, 1e-3), (1, 3e-3))]
    rows += [{"problem": "p", "activation": "tanh", "seed": 0, "rel_l2": 1e-1}]
    md = markdown_table(rows)
    assert "**2.00e-03 ± 1.0e-03**" in md and "1.00e-01" in md


def test_a_diverging_cell_is_a_row_not_the_end_of_the_table(tmp_path, monkeypatch):
    """A cell whose training diverges (train raises FloatingPointError) is recorded with
    its status and a nan error, the other cells and the summaries are still written, and
    the table says "diverged"."""
    train_module = sys.modules["pinn_sine.train"]  # the module (the package's `train` is the function)
    real = train_module.train

    def train(problem, net, **kw):
        if getattr(net, "inner", net).activations[0].name == "tanh":
            raise FloatingPointError("diverging at step 7 (adam): the loss 1e+03 has been above 10000 x its best; "
                                     "lower the learning rate")
        return real(problem, net, **kw)

    monkeypatch.setattr(train_module, "train", train)
    out = tmp_path / "cmp"
    rows = compare(["poisson2d"], ["siren", "tanh"], [0], steps=10, width=8, depth=1, out=str(out), progress=False)
    by = {r["activation"]: r for r in rows}
    assert by["siren"]["status"] == "ok" and by["siren"]["rel_l2"] < 2
    assert by["tanh"]["status"] == "diverged: diverging at step 7 (adam): the loss 1e+03 has been above 10000 x " \
                                   "its best" and math.isnan(by["tanh"]["rel_l2"])
    md = (out / "results.md").read_text()
    assert "diverged" in md and md.count("**") == 2  # the finite cell is the best
    assert (out / "errors.png").stat().st_size > 0


def test_markdown_table_counts_diverged_seeds():
    rows = [{"problem": "p", "activation": "siren", "seed": s, "rel_l2": v} for s, v in ((0, 1e-3), (1, float("nan")))]
    assert "**1.00e-03 (1 diverged)**" in markdown_table(rows)


def test_compare_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one budget"):
        compare(["poisson2d"], ["siren"], steps=None, seconds=None, out=str(tmp_path))
    with pytest.raises(ValueError, match=r'Invalid activation "sine". Must be one of'):
        compare(["poisson2d"], ["sine"], steps=1, out=str(tmp_path))
    with pytest.raises(ValueError, match=r'Invalid problem "heat"'):
        compare(["heat"], ["siren"], steps=1, out=str(tmp_path))


def test_cli_compare_with_two_jobs(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["compare", "--problems", "poisson2d", "--activations", "siren,relu", "--seconds", "1",
                 "--width", "8", "--depth", "1", "--jobs", "2", "--out", str(out), "--quiet"])
    assert code == 0
    rows = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(rows) == 2 and all(r["steps"] >= 1 for r in rows)
    assert "| poisson2d (rel_l2) |" in capsys.readouterr().out
