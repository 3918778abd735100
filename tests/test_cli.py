"""`twosided run` end to end, and clear errors for bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main

BAD = [
    (["seed=abc"], "seed", "whole number"),
    (["population.buyers=-5"], "population.buyers", ">= 0"),
    (["market.sellers.commission=1.5"], "market.sellers.commission", "probability"),
    (["market=moon"], "market", "delivery, goods, rides"),
    (["market.buyers.purchase.zeta=1"], "market.buyers.purchase.zeta", "known key"),
    (["days=0"], "days", "[1, 36500]"),
    (["experience_effects=maybe"], "experience_effects", "true or false"),
]


@pytest.mark.parametrize("overrides,key,allowed", BAD)
def test_bad_input_is_one_paragraph_exit_2(capsys, overrides, key, allowed):
    assert main(["run", *overrides]) == 2
    err = capsys.readouterr().err
    assert f"`{key}`" in err and allowed in err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_unknown_command_exit_2(capsys):
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_twosided_run_writes_a_run_folder(tmp_path):
    exe = Path(sys.executable).with_name("twosided")
    proc = subprocess.run([str(exe), "run", "scale=tiny", "market=goods", f"output.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Run folder:" in proc.stdout and "monthly churn" in proc.stdout
    assert "Traceback" not in proc.stderr and "timestep" not in proc.stderr + proc.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "ok"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= {"buyers", "sellers", "platform"}
    assert (run_dir / "daily.parquet").exists() and (run_dir / "agents.parquet").exists()
    assert (run_dir / "config.yaml").exists()
