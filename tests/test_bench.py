"""`twosided bench`'s bookkeeping (issue 18): the whole-process measurement and the
target checks. Speeds are measured by the bench, never asserted here."""
from __future__ import annotations

from experiments import benchmark as B


def _result(name: str, agent_days_per_s: float, seconds: float = 10.0, **extra) -> dict:
    return {"name": name, "agent_days_per_s": agent_days_per_s, "agent_days_per_cpu_s": agent_days_per_s,
            "seconds": seconds, "policies": ["tech_touch"], "agent_days": 1000, **extra}


def _verdicts(results):
    return {target: met for target, _, met in B.target_checks(results)}


def test_targets_are_met_at_the_threshold_and_missed_below_it():
    at = [_result("goods-1M", B.TARGET_GOODS_1M, seconds=8.0),
          _result("delivery-1M-all-policies", B.TARGET_DELIVERY_1M),
          _result("pair-100k-engine", 1.0, ratio_vs_mesa=B.TARGET_RATIO_100K, ratio_vs_mesa_cpu=1.0),
          _result("pair-10k-engine", 1.0, ratio_vs_mesa=B.TARGET_RATIO_10K, ratio_vs_mesa_cpu=1.0),
          _result("goods-10M", B.TARGET_GOODS_10M, peak_rss_per_agent_created=B.TARGET_BYTES_PER_AGENT_10M,
                  peak_rss_bytes=3e9, agents_created=10_000_000),
          _result("goods-1M-whole-process", 1.0, seconds=8.0 * B.TARGET_WHOLE_PROCESS),
          _result("goods-100k", B.TARGET_GOODS_1M)]
    assert set(_verdicts(at).values()) == {True}
    below = [dict(r) for r in at]
    for r in below:
        r["agent_days_per_s"] *= 0.99
        r["ratio_vs_mesa"] = r.get("ratio_vs_mesa", 1.0) * 0.99
    below[4]["peak_rss_per_agent_created"] *= 1.01
    below[5]["seconds"] *= 1.01
    below[6]["agent_days_per_s"] = B.TARGET_GOODS_1M * 2   # 1M at half the 100k rate: not linear
    assert set(_verdicts(below).values()) == {False}, _verdicts(below)
    assert set(_verdicts([]).values()) == {None}   # nothing measured: "not run", never "met"
    at[5]["agent_days"] += 1   # the whole process ran another case than goods-1M: no verdict
    assert list(_verdicts(at).values())[6] is None


def test_whole_process_case_times_the_run_command_and_counts_its_agent_days():
    from experiments.config import load_config
    from sim import Marketplace

    command = ["market=goods", "scale=tiny", "days=20"]
    case = B.Case("tiny-process", "process", "goods", 1000, 20, 1, command=command)
    measured = B.run_once(case, timeout=300)
    direct = Marketplace(load_config(command)).run()
    assert measured["agent_days"] == B._agent_days(direct.daily) and measured["days"] == 20
    assert measured["agents_created"] == len(direct.agents)
    # the child's own accounting: a Python process with numpy and pandas loaded is over 50 MB
    assert measured["peak_rss_bytes"] > 50e6 and 0 < measured["cpu_seconds"]
    assert measured["seconds"] > 0


def test_readme_table_has_a_row_per_case_and_every_targets_verdict():
    common = {"agents": 1100, "agents_created": 2000, "days": 365, "peak_rss_bytes": 2**30,
              "peak_rss_per_agent_created": 536.9, "machine": "test CPU", "load_average": [0.5, 1.5],
              "date": "2026-11-30", "engine": "twosided"}
    results = [_result("goods-1M", B.TARGET_GOODS_1M / 2, **common),
               _result("goods-100k", B.TARGET_GOODS_1M / 2, **common)]
    lines = B.readme_table(results)
    rows = [line for line in lines if line.startswith("| goods-")]
    assert [row.split(" | ")[0] for row in rows] == ["| goods-1M", "| goods-100k"]
    assert "| 1,024 MB | 537 B |" in rows[0]
    first = lines.index("| target | measured | verdict |") + 2
    verdicts = [line.split(" | ")[-1].rstrip(" |") for line in lines[first:first + len(B.target_checks(results))]]
    assert verdicts[0] == "MISSED" and verdicts[-1] == "met"   # half the target speed; 1M as fast as 100k
    assert verdicts.count("not run") == len(verdicts) - 2
    assert "test CPU" in lines[-1] and "2026-11-30" in lines[-1] and "0.50-1.50" in lines[-1]
