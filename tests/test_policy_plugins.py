"""A CS policy can be added without editing the package: a class decorated with ``register_policy``,
found by name like the built-in ones, or an installed package's ``twosided.policies`` entry point."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from experiments.config import load_config
from policies import base
from policies.base import Policy, build_policies, register_policy, registry
from sim import Marketplace
from sim.config import ConfigError


@pytest.fixture
def clean_registry(monkeypatch):
    """The registry as it is, restored after the test (plug-ins registered here do not leak)."""
    registry()
    monkeypatch.setattr(base, "_registered", dict(base._registered))
    return base._registered


class CountingNudge(Policy):
    """Counts the ``per_day`` lowest-id active buyers it would nudge each day (``level`` is only checked)."""

    name = "counting_nudge"

    def configure(self, p, market) -> None:
        self.per_day = int(p.number("per_day", "count"))
        self.level = p.number("level", "prob")
        self.touched = 0

    def act(self, day, cs) -> None:
        buyers = cs.view("buyers")
        ids = np.flatnonzero(buyers.alive)[: self.per_day]
        self.touched += ids.size


def test_a_decorated_policy_is_found_by_name_and_built_with_checked_parameters(clean_registry):
    register_policy(CountingNudge)
    assert registry()["counting_nudge"] is CountingNudge
    cfg = load_config(["scale=tiny", "days=5"])
    built = build_policies({"counting_nudge": {"per_day": 3, "level": 0.8}}, cfg.market, cfg.cs)
    assert [type(p) for p in built] == [CountingNudge]
    model = Marketplace(cfg, policies=built)
    model.run()
    assert built[0].touched == 3 * 5
    with pytest.raises(ConfigError, match="policy.counting_nudge.level"):
        build_policies({"counting_nudge": {"per_day": 3, "level": 2.0}}, cfg.market, cfg.cs)


def documented_example() -> type[Policy]:
    """Execute docs/policies.md's plug-in example (the block starting ``# acme_cs/policy.py``); its class."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "policies.md").read_text()
    code = text[text.index("# acme_cs/policy.py"):]
    code = code[:code.index("```")]
    namespace: dict = {}
    exec(compile(code, "docs/policies.md", "exec"), namespace)
    return namespace["WelcomeCall"]


def test_the_documented_example_calls_new_sellers_within_capacity_at_its_price(clean_registry):
    welcome_call = documented_example()          # registers itself with its decorator
    assert registry()["welcome_call"] is welcome_call
    cfg = load_config(["scale=tiny", "market=goods", "days=40"])
    params = {"calls_per_day": 4, "minutes_per_call": 20.0, "level": 0.8, "weight": 0.3}
    policy, = build_policies({"welcome_call": params}, cfg.market, cfg.cs)
    model = Marketplace(cfg, policies=[policy])
    result = model.run()
    sellers = model.cs.actions.view("sellers")
    touched = np.flatnonzero(sellers.touches > 0)
    assert touched.size > 0 and np.all(sellers.touches[touched] == 1)
    assert np.all(sellers.last_touch_day[touched] - sellers.join_day[touched] < 7)
    assert np.all(np.bincount(sellers.last_touch_day[touched], minlength=cfg.days) <= params["calls_per_day"])
    cost_each = params["minutes_per_call"] * cfg.cs.staff_cost_per_day / (60.0 * cfg.cs.workday_hours)
    assert result.daily["cs_cost_welcome_call"].sum() == pytest.approx(touched.size * cost_each)


def test_a_second_class_under_a_taken_name_is_refused(clean_registry):
    class Impostor(Policy):
        name = "tech_touch"

    with pytest.raises(ValueError, match="two CS policies are named 'tech_touch'"):
        register_policy(Impostor)
    with pytest.raises(TypeError, match="identifier"):
        register_policy(type("Nameless", (Policy,), {"name": ""}))
    with pytest.raises(TypeError, match="not a subclass"):
        register_policy(int)


def test_an_installed_entry_point_is_discovered(tmp_path, monkeypatch, clean_registry):
    # A minimal installed distribution: a module and a dist-info with its entry point, on sys.path.
    (tmp_path / "acme_cs.py").write_text(textwrap.dedent('''
        from policies import Policy

        class AcmeCall(Policy):
            name = "acme_call"
    '''))
    info = tmp_path / "acme_cs-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-cs\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[twosided.policies]\nacme_call = acme_cs:AcmeCall\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(base, "_loaded", False)
    try:
        assert registry()["acme_call"].__module__ == "acme_cs"
    finally:
        sys.modules.pop("acme_cs", None)


def test_a_broken_entry_point_names_itself(tmp_path, monkeypatch, clean_registry):
    info = tmp_path / "broken_cs-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-cs\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[twosided.policies]\nbroken = no_such_module_here:Policy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(base, "_loaded", False)
    with pytest.raises(ConfigError, match="twosided.policies:broken"):
        registry()
