"""`twosided compare`: settings, warm-up branching, common random numbers, serial = parallel, the report."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import compare as cmp
from experiments.config import group_options, load_config
from sim import ConfigError, Marketplace

TINY = ["scale=tiny", "days=40"]


def _settings(*extra: str) -> cmp.Settings:
    return cmp.parse_args([*TINY, "replicates=2", "jobs=1", "progress=false", *extra])


# -- settings ---------------------------------------------------------------------------------------
def test_settings_defaults_and_model_overrides():
    s = cmp.parse_args(["market=rides", "seed=7", "replicates=4", "crn=false", "confidence=0.9"])
    assert s.model == ["market=rides", "seed=7"]
    assert (s.replicates, s.crn, s.confidence, s.jobs, s.warmup_days) == (4, False, 0.9, 2, 0)
    base, arms = cmp.resolve_arms(s)
    assert base.name == "none"
    # default arms: every option of conf/policy/ except the baseline (new policies are picked up)
    assert [a.name for a in arms] == [o for o in group_options("policy") if o != "none"]


def test_arm_lists_and_compositions():
    s = cmp.parse_args(["arms=[a,[b,c],d+e,a]"])
    _, arms = cmp.resolve_arms(s)
    assert [(a.name, a.policies) for a in arms] == [("a", ["a"]), ("b+c", ["b", "c"]), ("d+e", ["d", "e"])]
    assert arms[1].overrides == ["policy=[b,c]"]


@pytest.mark.parametrize("arg, key", [("replicates=1", "replicates"), ("jobs=zero", "jobs"),
                                      ("confidence=1.5", "confidence"), ("crn=maybe", "crn"),
                                      ("warmup_days=-3", "warmup_days"), ("policy=tech_touch", "policy"),
                                      ("baseline=nope", "baseline"), ("arms={x: 1}", "arms")])
def test_bad_settings_name_key_value_and_what_is_allowed(arg, key):
    with pytest.raises(ConfigError) as info:
        cmp.resolve_arms(cmp.parse_args([arg]))
    assert info.value.key == key and "Allowed:" in str(info.value)


def test_cli_bad_value_exits_2_with_one_paragraph(capsys, tmp_path):
    assert cmp.main(["replicates=two", f"out={tmp_path}"]) == 2
    assert cmp.main(["scale=huge", f"out={tmp_path}"]) == 2  # a bad model override
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "`replicates` = 'two'" in err and "`scale`" in err
    assert cmp.main(["warmup_days=400", "scale=tiny", f"out={tmp_path}"]) == 2  # beyond the run's 90 days
    assert "warmup_days" in capsys.readouterr().err


# -- branching --------------------------------------------------------------------------------------
def _frames_equal(a, b) -> None:
    pd.testing.assert_frame_equal(a.daily, b.daily, check_exact=True)
    pd.testing.assert_frame_equal(a.agents, b.agents, check_exact=True)


def test_branch_is_a_real_copy_of_the_whole_state():
    cfg = load_config([*TINY, "seed=5"])
    base = Marketplace(cfg)
    base.run_until(15)
    first, second = base.branch(), base.branch()
    r1 = first.run()
    assert base.day == 15  # running a copy leaves the snapshot where it was
    r2 = second.run()
    _frames_equal(r1, r2)
    # and a copy continues exactly like the market that was never copied
    _frames_equal(r1, Marketplace(cfg).run())


def test_two_arms_with_the_same_policy_after_the_branch_are_bit_identical():
    policies = [p for p in group_options("policy") if p != "none"]
    if not policies or not hasattr(Marketplace, "set_policies"):
        pytest.skip("no policy to switch on yet (needs conf/policy/* and Marketplace.set_policies)")
    policy = "tech_touch" if "tech_touch" in policies else policies[0]
    arm_cfg = load_config([*TINY, f"policy={policy}"])
    base = Marketplace(load_config(TINY))
    base.run_until(10)
    a = cmp.branch_arm(base, arm_cfg, True).run()
    b = cmp.branch_arm(base, arm_cfg, True).run()
    _frames_equal(a, b)


def test_warmup_comparison_branches_every_arm_from_one_snapshot():
    s = _settings("warmup_days=12")
    base = cmp.Arm("none", ["none"])
    same = cmp.Arm("none_again", ["none"])  # the baseline again: must match it exactly in every replicate
    runs, failed, seeds, days, _ = cmp.simulate(s, base, [same], crn=True)
    assert not failed and days == 40
    by = {(r["arm_name"], r["replicate"]): r for r in runs}
    for rep in range(2):
        a, b = by[("none", rep)], by[("none_again", rep)]
        assert a["start_day"] == b["start_day"] == 12
        assert a["metrics"] == b["metrics"]
        np.testing.assert_array_equal(a["series"]["net_contribution"], b["series"]["net_contribution"])
    # the warmed-up run equals a run that never paused
    straight = cmp.reduce_result(Marketplace(load_config([*TINY, f"seed={seeds['none'][1]}"])).run())
    assert straight["metrics"] == by[("none", 1)]["metrics"]


# -- common random numbers and parallel runs ----------------------------------------------------------
def test_common_random_numbers_pair_the_arms_and_crn_false_does_not():
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("none_again", ["none"]), cmp.Arm("staff", ["none"], ["cs.staff_cost_per_day=300"])]
    s = _settings()
    runs, failed, seeds, _, _ = cmp.simulate(s, base, arms, crn=True)
    assert seeds == {"none": [0, 1], "none_again": [0, 1], "staff": [0, 1]}
    st = cmp.paired_table(cmp.tidy(runs), "none", 0.95)
    again = st[st["arm"] == "none_again"]
    assert (again["diff"].fillna(0) == 0).all() and (again["width"].fillna(0) == 0).all()
    # dearer CS staff: the same market (same luck), only the cost differs, by (300 - base cost) x staff x days
    staff = st[(st["arm"] == "staff")].set_index(["side", "metric"])
    cfg = load_config(TINY)
    extra = (300 - cfg.cs.staff_cost_per_day) * cfg.cs.staff * 40
    assert staff.loc[("platform", "cs_cost"), "diff"] == pytest.approx(extra)
    assert staff.loc[("platform", "cs_cost"), "width"] == pytest.approx(0, abs=1e-6)
    assert staff.loc[("buyers", "monthly_churn"), "diff"] == 0
    independent, _, seeds_ind, _, _ = cmp.simulate(s, base, arms[:1], crn=False)
    assert seeds_ind == {"none": [1000, 1001], "none_again": [2000, 2001]}
    # the CRN check: with shared seeds the same policy has a zero-width interval, with independent seeds it does not
    ratios = cmp.crn_ratios(runs, independent, "none", 0.95)
    ratios = ratios.dropna()  # a side may have too few new agents at this size for a metric
    assert set(ratios["arm"]) == {"none_again"} and len(ratios) >= 4
    assert (ratios["width_crn"] == 0).all() and (ratios["width_independent"] > 0).all()


def test_parallel_runs_are_bit_identical_to_serial_runs():
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("budget", ["none"], ["market.buyers.acquisition.marketing_budget_per_1k=30"])]
    serial = cmp.simulate(_settings("jobs=1"), base, arms, crn=True)[0]
    parallel = cmp.simulate(_settings("jobs=2"), base, arms, crn=True)[0]
    pd.testing.assert_frame_equal(cmp.tidy(serial), cmp.tidy(parallel), check_exact=True)
    for a, b in zip(serial, parallel):
        for key in a["series"]:
            np.testing.assert_array_equal(a["series"][key], b["series"][key])
        for side in a["ltv"]:
            np.testing.assert_array_equal(a["ltv"][side], b["ltv"][side])


# -- the report --------------------------------------------------------------------------------------
def test_report_folder_with_a_failed_arm(tmp_path):
    s = _settings()
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("staff", ["none"], ["cs.staff_cost_per_day=300"]), cmp.Arm("no_such_policy", ["no_such_policy"])]
    runs, failed, seeds, days, market = cmp.simulate(s, base, arms, crn=True)
    assert set(failed) == {"no_such_policy"} and "no_such_policy" in failed["no_such_policy"]
    c = cmp.Comparison(s, base, [base, *arms], failed, runs, seeds, days, market, "", 1.0)
    from experiments.report import write_report

    paths = write_report(c, tmp_path / "report")
    folder = paths["folder"]
    table = pd.read_parquet(folder / "comparison.parquet")
    assert set(table["arm"]) == {"none", "staff"}
    assert len(table) == table[["arm", "replicate", "side", "metric"]].drop_duplicates().shape[0]
    md = (folder / "report.md").read_text()
    assert md.index("## Decision table") < md.index("## Figures")
    assert "no_such_policy (FAILED)" in md and "★" in md
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "<img src=\"retention.png\"" not in page
    for png in ("retention", "monthly_churn", "ltv", "cost_benefit", "nps_csat"):
        assert (folder / f"{png}.png").stat().st_size > 10_000
    eco = pd.read_csv(folder / "economics.csv").set_index("arm")
    assert eco.loc["staff", "roi"] == pytest.approx(-1.0)  # dearer staff, same market: -1 per unit
    assert np.isnan(eco.loc["staff", "payback_month"])


def test_retention_curve_counts_agents_alive_at_the_end_as_retained():
    from experiments.compare import retention_curve
    # int32, as in agents.parquet: 3 agents joined on day 0, one churned on day 5, two never churned.
    join = np.array([0, 0, 0], dtype=np.int32)
    churn = np.array([5, -1, -1], dtype=np.int32)
    curve = retention_curve(join, churn, days=14, min_agents=1)
    assert curve[0] == 1.0            # everyone is there at tenure 0
    assert curve[1] == 2 / 3          # tenure 7: the one who left on day 5 is gone
