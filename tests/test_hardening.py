"""What the corpus of bad inputs cannot show: usage on --help, output faults half-way, clean dates.

tests/test_bad_inputs.py holds the refusals; here are the cases that need a
valid input or a fault injected while writing.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from experiments.cli import COMMANDS, main


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_its_usage_on_help(command, flag, capsys):
    assert main([command, flag]) == 0
    out = capsys.readouterr().out
    assert f"twosided {command}" in out  # its own usage, not the composed config
    assert "staff_cost_per_day" not in out and "rating_floor" not in out
    assert len(out.splitlines()) < 60


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_saving_a_run_exits_1_and_never_looks_complete(tmp_path, monkeypatch, capsys):
    from experiments.collect import is_complete
    from sim.result import Result

    monkeypatch.setattr(Result, "save", _disk_full)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "market=goods", "scale=tiny", "days=3", f"output.dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "Traceback" not in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not is_complete(run_dir) and not (run_dir / "summary.json").exists()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"


LOG = "customer_id,date,amount\n" + "".join(
    f"{c},2024-{m:02d}-{d:02d}{tz},{10 + m}.5\n"
    for m in range(1, 13) for c, d, tz in (("a", 10, "T09:00:00+02:00"), ("b", 20, "T23:30:00-05:00"),
                                            ("c", 5, "Z"), ("c", 25, "")))


def test_calibrate_reads_mixed_timezones_as_local_dates_and_writes_valid_json(tmp_path, capsys):
    from experiments.calibrate import read_log

    log = tmp_path / "log.csv"
    log.write_text(LOG)
    orders = read_log(log)
    # the date as written, whatever the offset: 23:30 at -05:00 stays on the 20th
    assert sorted(orders["date"].dt.day.unique()) == [5, 10, 20, 25]
    out = tmp_path / "fit"
    assert main(["calibrate", f"data={log}", f"out={out}", "replicates=2"]) == 0, capsys.readouterr().err
    text = (out / "fit.json").read_text()
    fit = json.loads(text, parse_constant=lambda name: pytest.fail(f"fit.json holds {name}"))
    assert fit["bgnbd"]["customers"] == 3
    assert not (out / ".partial").exists()


def test_calibrate_disk_full_leaves_no_fit_json(tmp_path, monkeypatch, capsys):
    from experiments import calibrate

    log = tmp_path / "log.csv"
    log.write_text(LOG)
    monkeypatch.setattr(calibrate, "write_report", _disk_full)
    out = tmp_path / "fit"
    assert main(["calibrate", f"data={log}", f"out={out}"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert not (out / "fit.json").exists()  # fit.json, written last, marks a complete folder


def test_json_safe_turns_nan_and_infinity_into_null():
    import numpy as np

    from experiments.calibrate import json_safe

    value = {"a": float("nan"), "b": [np.float64(np.inf), 1.5, np.int64(3)], "c": {"d": -np.inf}}
    assert json.dumps(json_safe(value), allow_nan=False) == '{"a": null, "b": [null, 1.5, 3], "c": {"d": null}}'


def test_memory_check_refuses_with_the_estimate_and_passes_small_runs():
    from experiments.checks import check_memory, estimated_run_bytes
    from experiments.config import load_config
    from sim.config import ConfigError

    cfg = load_config(["market=goods", "scale=tiny"])
    need, agents = estimated_run_bytes(cfg)
    assert agents["buyers"] > cfg.population.buyers  # joins over the run are counted
    check_memory(cfg, available=int(need / 0.8) + 1)  # fits: no error
    with pytest.raises(ConfigError, match="GiB estimated") as refused:
        check_memory(cfg, available=int(need))
    assert refused.value.key == "population.buyers"


def test_outlying_date_is_accepted_once_the_period_is_stated(tmp_path):
    from experiments.calibrate import CalibrationError, read_log

    log = tmp_path / "log.csv"
    log.write_text(LOG + "a,2099-03-01,12\n")
    with pytest.raises(CalibrationError, match="line 50"):
        read_log(log)
    orders = read_log(log, period_start="2024-01-01", period_end="2099-12-31")
    assert orders["date"].max().year == 2099


def test_sweep_folder_is_resolved_once(tmp_path):
    from experiments.run import _sweep_dir

    assert _sweep_dir([f"hydra.sweep.dir={tmp_path}/s"]) == Path(f"{tmp_path}/s")
    default = _sweep_dir([])
    assert default.parts[0] == "multirun" and "$" not in str(default)
