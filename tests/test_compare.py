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
    s = cmp.parse_args(["arms=[tech_touch,[win_back,tech_touch],proactive_outreach+win_back,tech_touch]"])
    _, arms = cmp.resolve_arms(s)
    assert [(a.name, a.policies) for a in arms] == [
        ("tech_touch", ["tech_touch"]), ("win_back+tech_touch", ["win_back", "tech_touch"]),
        ("proactive_outreach+win_back", ["proactive_outreach", "win_back"])]
    assert arms[1].overrides == ["policy=[win_back,tech_touch]"]


def test_arm_variants_set_policy_parameters_and_say_what_they_changed():
    s = cmp.parse_args(["arms=[tech_touch(weight=0.025,max_nudges=3),proactive_outreach+tech_touch(weight=0.1),"
                        "segmented(enterprise.capacity_per_cadence=30),outreach_x2]"])
    _, arms = cmp.resolve_arms(s)
    half, both, nested, named = arms
    assert half.overrides == ["policy=tech_touch", "policy.tech_touch.weight=0.025", "policy.tech_touch.max_nudges=3"]
    assert half.changed == "tech_touch: weight 0.05 -> 0.025, max_nudges 6 -> 3"
    assert both.policies == ["proactive_outreach", "tech_touch"] and both.changed == "tech_touch: weight 0.05 -> 0.1"
    assert nested.overrides[-1] == "policy.segmented.enterprise.capacity_per_cadence=30"
    # a named variant of conf/arm/: its file name, its policies, what it changed against conf/policy/
    assert named.name == "outreach_x2" and named.policies == ["proactive_outreach"]
    assert named.changed == "proactive_outreach: capacity_per_cadence 40 -> 80" and named.description
    # the variant's value reaches the composed config
    p = cmp.plan(cmp.parse_args(["arms=[tech_touch(weight=0.025)]", *TINY]))
    assert p.configs[1].policy["tech_touch"]["weight"] == 0.025 and p.configs[0].policy in (None, {})


@pytest.mark.parametrize("arms, says", [
    ("arms=[nope]", "'nope' is neither a policy"), ("arms=[]", "at least one arm"),
    ("arms=[tech_touch(wieght=0.1)]", "parameters of tech_touch"), ("arms=[tech_touch(weight)]", "key=value"),
    ("arms=[tech_touch(weight=0.1]", "unbalanced"), ("arms=[none]", "differs from the baseline"),
    ("arms=[outreach_x2(weight=1)]", "takes no parameters"),
])
def test_bad_arms_are_refused_with_what_is_allowed(arms, says):
    with pytest.raises(ConfigError) as info:
        cmp.plan(cmp.parse_args([arms, *TINY]))
    assert info.value.key == "arms" and says in str(info.value)


@pytest.mark.parametrize("market, arm", [("goods", "fair_disputes"), ("rides", "segmented"),
                                         ("rides", "tech_touch(weight=2)")])
def test_an_arm_the_market_cannot_use_is_refused_before_any_run(market, arm, tmp_path, capsys):
    assert cmp.main([f"arms=[{arm}]", f"market={market}", *TINY, f"out={tmp_path / 'c'}"]) == 2
    err = capsys.readouterr().err
    assert "`arms`" in err and arm in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()  # refused before the folder was made


@pytest.mark.parametrize("arg, key", [("replicates=1", "replicates"), ("jobs=zero", "jobs"),
                                      ("confidence=1.5", "confidence"), ("crn=maybe", "crn"),
                                      ("warmup_days=-3", "warmup_days"), ("policy=tech_touch", "policy"),
                                      ("policy.tech_touch.weight=1", "policy.tech_touch.weight"),
                                      ("baseline=nope", "baseline"), ("arms={x: 1}", "arms"),
                                      ("guards.min_answers=0", "guards.min_answers"), ("guards.nope=1", "guards.nope"),
                                      ("launcher=slurm", "launcher")])
def test_bad_settings_name_key_value_and_what_is_allowed(arg, key):
    with pytest.raises(ConfigError) as info:
        cmp.resolve_arms(cmp.parse_args([arg]))
    assert info.value.key == key and "Allowed:" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args, key, allowed", [
    (["launcher_options.mem_gb=8"], "launcher_options", "launcher=submitit_slurm"),        # the local pool
    (["launcher=submitit_slurm", "launcher_options.memory=8"], "launcher_options.memory", "mem_gb"),
    (["launcher=submitit_slurm", "launcher_options=8"], "launcher_options", "launcher_options.KEY=VALUE")])
def test_launcher_options_are_keys_of_a_submitit_launcher(args, key, allowed):
    with pytest.raises(ConfigError) as info:
        cmp.parse_args(args)
    assert info.value.key == key and allowed in str(info.value) and "\n" not in str(info.value)


def test_launcher_options_replace_the_launchers_config():
    options = cmp.parse_args(["launcher=submitit_slurm", "launcher_options.mem_gb=8",
                              "launcher_options.partition=short"]).launcher_options
    update = cmp.launcher_parameters("submitit_slurm", options)["update"]
    assert update["mem_gb"] == 8 and update["slurm_partition"] == "short"
    assert cmp.launcher_parameters("submitit_slurm")["update"]["mem_gb"] == 4   # conf/hydra/launcher/ unchanged


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
    cfg = load_config([*TINY, f"seed={seeds['none'][1]}"])
    straight = cmp.reduce_result(Marketplace(cfg).run(), 0, cfg.metrics.survey_share_per_month)
    assert straight["metrics"] == by[("none", 1)]["metrics"]


# -- common random numbers and parallel runs ----------------------------------------------------------
def test_common_random_numbers_pair_the_arms_and_crn_false_does_not():
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("none_again", ["none"]), cmp.Arm("staff", ["none"], ["cs.staff_cost_per_day=300"])]
    s = _settings()
    runs, failed, seeds, _, _ = cmp.simulate(s, base, arms, crn=True)
    assert seeds == {"none": [0, 1], "none_again": [0, 1], "staff": [0, 1]}
    st = cmp.tables.paired_table(cmp.tables.tidy(runs), "none", 0.95)
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
    ratios = cmp.tables.crn_ratios(runs, independent, "none", 0.95, cmp.CRN_CHECK_METRICS)
    ratios = ratios.dropna()  # a side may have too few new agents at this size for a metric
    assert set(ratios["arm"]) == {"none_again"} and len(ratios) >= 4
    assert (ratios["width_crn"] == 0).all() and (ratios["width_independent"] > 0).all()


def test_parallel_runs_are_bit_identical_to_serial_runs():
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("budget", ["none"], ["market.buyers.acquisition.marketing_budget_per_1k=30"])]
    serial = cmp.simulate(_settings("jobs=1"), base, arms, crn=True)[0]
    parallel = cmp.simulate(_settings("jobs=2"), base, arms, crn=True)[0]
    pd.testing.assert_frame_equal(cmp.tables.tidy(serial), cmp.tables.tidy(parallel), check_exact=True)
    for a, b in zip(serial, parallel):
        for key in a["series"]:
            np.testing.assert_array_equal(a["series"][key], b["series"][key])
        for side in a["ltv"]:
            np.testing.assert_array_equal(a["ltv"][side], b["ltv"][side])


# -- the report --------------------------------------------------------------------------------------
def test_report_folder_with_a_failed_arm(tmp_path, monkeypatch):
    s = _settings()
    base = cmp.Arm("none", ["none"])
    arms = [cmp.Arm("staff", ["none"], ["cs.staff_cost_per_day=300"]), cmp.Arm("broken", ["none"])]
    real = cmp.run_task

    def failing(task):  # an arm that composes but fails while running
        if task.arm == 2:
            return {"arm": task.arm, "replicate": task.replicate, "seed": task.seed,
                    "error": "RuntimeError: the engine broke"}
        return real(task)

    monkeypatch.setattr(cmp, "run_task", failing)
    runs, failed, seeds, days, market = cmp.simulate(s, base, arms, crn=True)
    assert set(failed) == {"broken"} and "the engine broke" in failed["broken"]
    c = cmp.Comparison(s, base, [base, *arms], failed, runs, seeds, days, market, "", 1.0)
    from experiments.report import write_report

    paths = write_report(c, tmp_path / "report")
    folder = paths["folder"]
    table = pd.read_parquet(folder / "comparison.parquet")
    assert set(table["arm"]) == {"none", "staff"}
    assert len(table) == table[["arm", "replicate", "side", "metric"]].drop_duplicates().shape[0]
    md = (folder / "report.md").read_text()
    # the answer leads: the headline table and the cost-and-benefit chart come before everything else
    assert md.index("## The answer") < md.index("cost_benefit.png") < md.index("## Validity warnings") \
        < md.index("## Assumptions") < md.index("## Details by side") < md.index("## Figures")
    assert "### Failed arms" in md and "the engine broke" in md and "p (Holm)" in md
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and 'src="retention.png"' not in page
    # no table needs horizontal scrolling: none has more than seven short columns
    import re

    assert max(len(re.findall(r"<th[\s>]", t)) for t in re.findall(r"<thead>.*?</thead>", page, re.S)) <= 7
    for png in ("retention", "monthly_churn", "ltv", "cost_benefit", "effects", "payback"):
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
