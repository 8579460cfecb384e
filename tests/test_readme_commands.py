"""Every command of the README's "Command line" section runs as written, in order, in a
fresh folder: ``benchmarks/commands.py --short --long`` (step counts and time budgets
divided by 1000) must finish every one of them without an error."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def commands():
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / "benchmarks" / "commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_lists_its_commands(commands):
    found = [c for c, _ in commands.readme_commands()]
    assert len(found) >= 18
    assert found[0] == "pinn-sine problems" and any(c.startswith("torchrun ") for c in found)
    assert any("--module examples/advdiff2d.py" in c for c in found)


def test_shortening_divides_every_budget(commands):
    assert commands.shorten("pinn-sine solve wave2d --steps 100000 --time-limit 600") == \
        "pinn-sine solve wave2d --steps 100 --time-limit 0.6"
    assert commands.shorten("pinn-sine solve wave1d --constraint hard") == \
        "pinn-sine solve wave1d --constraint hard --steps 2"
    assert commands.shorten("pinn-sine compare --seconds 30 --jobs 2") == "pinn-sine compare --seconds 0.03 --jobs 2"
    assert commands.shorten("pinn-sine --module m.py solve p --gn-steps 300") == \
        "pinn-sine --module m.py solve p --gn-steps 1 --steps 2"


@pytest.mark.timeout(900)
def test_every_readme_command_runs_as_written(commands, tmp_path, capsys):
    status = commands.main(["--short", "--long", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "FAILED" not in out
