"""The model behind `twosided app`: one or two Marketplaces stepped together.

:class:`MarketLab` is a ``mesa.Model`` whose keyword arguments are the
page's controls (market, policy, side sizes, take rate, onboarding quality,
CS staff, marketing budget, seed, preset, side-by-side). It builds the run
configuration with :func:`experiments.config.load_config` and holds one
:class:`sim.Marketplace` per arm:

* normal mode: one arm, the chosen policy;
* side-by-side mode: two arms with the same seed and configuration, one
  without CS policy (``policy=none``) and one with the chosen policy. Streams
  are counter-based, so both arms see the same luck for every agent that
  exists in both: the gap between the lines is the policy's effect.

Nothing here imports solara: the page (experiments/app_page.py) only draws
what this module computes, and tests can drive it without a browser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mesa
import numpy as np
from omegaconf import OmegaConf

from experiments.config import CONF_DIR, group_options, load_config
from sim import Marketplace

PRESET_DIR = CONF_DIR / "presets"
NO_PRESET = "none (use the controls)"
MONTH = 30
SIDE_ORDER = ("buyers", "sellers", "drivers")
SIDE_LABEL = {"buyers": "buyers", "sellers": "sellers", "drivers": "drivers"}
# Who the sides are in each market, for labels a student recognises.
SIDE_NAMES = {
    "goods": {"buyers": "shoppers", "sellers": "merchants"},
    "rides": {"buyers": "riders", "drivers": "drivers"},
    "delivery": {"buyers": "diners", "sellers": "restaurants", "drivers": "couriers"},
}

# The page's controls and their defaults (also the defaults of MarketLab()).
DEFAULTS = dict(market="rides", policy="none", side_by_side=False, preset=NO_PRESET,
                buyers=2000, sellers=200, drivers=80, take_rate=0.20, onboarding_quality=0.7,
                cs_staff=2, marketing_pct=100, seed="0", days=730)


# -- presets -------------------------------------------------------------------
@dataclass
class Preset:
    """A teaching scenario from conf/presets/<name>.yaml, started at one of its starts."""

    name: str
    start: str
    title: str
    market: str
    explanation: str
    overrides: list[str]
    population: dict[str, int]
    days: int
    controls: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return preset_label(self.name, self.start)


def preset_label(name: str, start: str) -> str:
    """How a preset start is named in the chooser: ``critical_mass: below``."""
    return f"{name}: {start}"


def preset_files() -> list[Path]:
    """The preset files, conf/presets/*.yaml."""
    return sorted(PRESET_DIR.glob("*.yaml"))


def preset_choices() -> list[str]:
    """Every preset start, as labels for the chooser (after NO_PRESET)."""
    labels = []
    for path in preset_files():
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        labels += [preset_label(path.stem, start) for start in spec["starts"]]
    return labels


def load_preset(label: str) -> Preset:
    """The preset start named ``label`` (``name: start``)."""
    name, _, start = label.partition(": ")
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {label!r}; allowed: {', '.join(preset_choices())}")
    spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if start not in spec["starts"]:
        raise ValueError(f"preset {name} has no start {start!r}; allowed: {', '.join(spec['starts'])}")
    return Preset(name=name, start=start, title=spec.get("title", name), market=spec["market"],
                  explanation=" ".join(str(spec.get("explanation", "")).split()),
                  overrides=[str(o) for o in spec.get("overrides", [])],
                  population={k: int(v) for k, v in spec["starts"][start].items()},
                  days=int(spec.get("days", DEFAULTS["days"])), controls=dict(spec.get("controls", {})))


def preset_overrides(label: str, seed: int = 0, policy: str = "none") -> list[str]:
    """The full override list of a preset start (what notebooks and tests run)."""
    p = load_preset(label)
    return ([f"market={p.market}", f"policy={policy}", f"seed={seed}", f"days={p.days}"]
            + [f"population.{side}={n}" for side, n in p.population.items()] + p.overrides)


# -- building the configuration -------------------------------------------------
def parse_seed(seed) -> int:
    """The seed field is text: a whole number >= 0, anything else is an error the page shows."""
    text = str(seed).strip()
    if not text.isdigit():
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(text)


def control_overrides(market: str, *, buyers: int, sellers: int, drivers: int, take_rate: float,
                      onboarding_quality: float, cs_staff: int, marketing_pct: float) -> list[str]:
    """Hydra overrides for the page's sliders in ``market`` (sides the market lacks are left out).

    Take rate and onboarding quality apply to every side that has them; the
    marketing budget is a percentage of each side's default budget.
    """
    sides = _market_sides(market)
    out = [f"population.{side}={int(n)}" for side, n in
           (("buyers", buyers), ("sellers", sellers), ("drivers", drivers)) if side in sides]
    for side in sides:
        if side != "buyers":
            out.append(f"market.{side}.commission={float(take_rate):g}")
        out.append(f"market.{side}.onboarding.quality={float(onboarding_quality):g}")
    out.append(f"cs.staff={int(cs_staff)}")
    base = load_config([f"market={market}"]).market
    for side in sides:
        budget = getattr(base, side).acquisition.marketing_budget_per_1k * float(marketing_pct) / 100.0
        out.append(f"market.{side}.acquisition.marketing_budget_per_1k={budget:g}")
    return out


_SIDES_CACHE: dict[str, tuple[str, ...]] = {}


def _market_sides(market: str) -> tuple[str, ...]:
    if market not in _SIDES_CACHE:
        _SIDES_CACHE[market] = tuple(load_config([f"market={market}"]).market.sides)
    return _SIDES_CACHE[market]


# -- the model ---------------------------------------------------------------
class Arm:
    """One Marketplace and the figures the page draws from it."""

    def __init__(self, label: str, policy: str, cfg):
        self.label = label
        self.policy = policy
        self.model = Marketplace(cfg)
        self.waiting = np.empty(0, dtype=np.int64)   # buyers whose request failed today
        self.served = np.empty(0, dtype=np.int64)    # buyers served today

    def step(self) -> None:
        buyers = self.model.sides["buyers"]
        n = buyers.n
        orders, completed = buyers.orders.copy(), buyers.orders_completed.copy()
        self.model.step()
        asked = buyers.orders[:n] - orders
        got = buyers.orders_completed[:n] - completed
        self.waiting = np.flatnonzero((asked > got) & buyers.alive[:n])
        self.served = np.flatnonzero(got > 0)

    @property
    def rows(self) -> list[dict]:
        return self.model.ledger.rows


class MarketLab(mesa.Model):
    """The app's model: its keyword arguments are the page's controls; ``step()`` is one day.

    ``preset`` (a label from :func:`preset_choices`) replaces market and side
    sizes with the preset's and adds its overrides; the other controls still
    apply unless the preset fixes them too. ``side_by_side`` runs a second
    arm without the policy on the same random numbers.
    """

    def __init__(self, market: str = DEFAULTS["market"], policy: str = DEFAULTS["policy"],
                 side_by_side: bool = DEFAULTS["side_by_side"], preset: str = DEFAULTS["preset"],
                 buyers: int = DEFAULTS["buyers"], sellers: int = DEFAULTS["sellers"],
                 drivers: int = DEFAULTS["drivers"], take_rate: float = DEFAULTS["take_rate"],
                 onboarding_quality: float = DEFAULTS["onboarding_quality"], cs_staff: int = DEFAULTS["cs_staff"],
                 marketing_pct: float = DEFAULTS["marketing_pct"], seed=DEFAULTS["seed"],
                 days: int = DEFAULTS["days"]):
        self.warning = None
        try:
            seed_value = parse_seed(seed)
        except ValueError as error:
            seed_value, self.warning = 0, f"{error}; using seed 0."
        super().__init__(seed=seed_value)
        self.preset = load_preset(preset) if preset and preset != NO_PRESET else None
        controls = dict(buyers=buyers, sellers=sellers, drivers=drivers, take_rate=take_rate,
                        onboarding_quality=onboarding_quality, cs_staff=cs_staff, marketing_pct=marketing_pct)
        if self.preset:
            market = self.preset.market
            controls.update(self.preset.controls)
            controls.update(self.preset.population)
            days = self.preset.days
        self.market_name = market
        self.policy = policy
        self.side_by_side = bool(side_by_side)
        self.seed_value = seed_value
        self.controls = controls
        common = [f"market={market}", f"seed={seed_value}", f"days={int(days)}"]
        common += control_overrides(market, **controls)
        if self.preset:
            common += self.preset.overrides
        self.overrides = common
        arms = [("without policy", "none"), (f"with {policy}", policy)] if self.side_by_side else \
            [(f"policy: {policy}", policy)]
        self.arms = [Arm(label, p, load_config(common + [f"policy={p}"])) for label, p in arms]
        self.sides = tuple(s for s in SIDE_ORDER if s in self.arms[0].model.sides)
        self.days = int(days)
        self.running = True

    # -- stepping ------------------------------------------------------------
    def step(self) -> None:
        """One simulated day in every arm."""
        if self.day >= self.days:
            self.running = False
            return
        for arm in self.arms:
            arm.step()
        self.running = self.day < self.days

    @property
    def day(self) -> int:
        return self.arms[0].model.day

    # -- what the page draws ------------------------------------------------
    def side_name(self, side: str) -> str:
        return SIDE_NAMES.get(self.market_name, {}).get(side, side)

    def series(self, arm: Arm, column: str) -> np.ndarray:
        """One ledger column per day (NaN where a day lacks it)."""
        return np.array([row.get(column, math.nan) for row in arm.rows], dtype=float)

    def active(self, arm: Arm, side: str) -> np.ndarray:
        return self.series(arm, f"{side}_active")

    def monthly_churn(self, arm: Arm, side: str) -> np.ndarray:
        """Monthly churn on each day t >= 29: churned on days t-29..t / active at the end of day t-30.

        Day -1's "active" is the initial population. Agents who joined and left
        within the 30 days count in the numerator, not the denominator.
        """
        churned = self.series(arm, f"{side}_churned")
        active = np.concatenate([[arm.model.initial_size[side]], self.active(arm, side)])
        out = np.full(churned.size, np.nan)
        if churned.size >= MONTH:
            window = np.convolve(churned, np.ones(MONTH), mode="valid")   # sum over t-29..t, t = 29..
            start = active[: window.size]                                  # end of day t-30 (index t-29)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[MONTH - 1:] = np.where(start > 0, window / start, np.nan)
        return out

    def nps(self, arm: Arm, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Survey days and NPS (points), one per 30-day month."""
        values = self.series(arm, f"{side}_nps")
        days = np.flatnonzero(np.isfinite(values))
        return days, values[days]

    def money(self, arm: Arm, column: str, window: int = 7) -> np.ndarray:
        """A money column per day, as a trailing ``window``-day mean (currency per day)."""
        values = self.series(arm, column)
        if values.size == 0:
            return values
        cum = np.cumsum(np.nan_to_num(values))
        out = np.empty_like(cum)
        out[:window] = cum[:window] / np.arange(1, min(window, cum.size) + 1)
        out[window:] = (cum[window:] - cum[:-window]) / window
        return out

    def latest(self, arm: Arm) -> dict:
        """Today's headline figures of one arm (for the readout)."""
        if not arm.rows:
            return {f"{s}_active": arm.model.initial_size[s] for s in self.sides}
        return arm.rows[-1]

    def city(self, arm: Arm) -> dict[str, np.ndarray] | None:
        """Positions on the unit torus for the map (None for goods: no city).

        ``idle``: drivers online today who had no trip; ``busy``: drivers who drove
        a trip today (``busy_until`` after the start of the day just simulated);
        ``offline``: alive drivers not working today; ``waiting``: riders whose
        request failed today (no idle driver within reach); ``sellers``:
        restaurants (delivery).
        """
        if "drivers" not in arm.model.sides:
            return None
        d = arm.model.sides["drivers"]
        b = arm.model.sides["buyers"]
        start_of_day = arm.model.day - 1
        alive = d.alive
        online = alive & (d.online_hours > 0)
        busy = online & (d.busy_until > start_of_day) if arm.rows else np.zeros(d.n, dtype=bool)
        out = {"busy": np.column_stack([d.x[busy], d.y[busy]]),
               "idle": np.column_stack([d.x[online & ~busy], d.y[online & ~busy]]),
               "offline": np.column_stack([d.x[alive & ~online], d.y[alive & ~online]]),
               "waiting": np.column_stack([b.home_x[arm.waiting], b.home_y[arm.waiting]])}
        if "sellers" in arm.model.sides:
            s = arm.model.sides["sellers"]
            out["sellers"] = np.column_stack([s.x[s.alive], s.y[s.alive]])
        return out

    def describe(self) -> str:
        """One line a student can read: what is being simulated."""
        names = ", ".join(f"{self.controls[s]:,} {self.side_name(s)}" for s in self.sides)
        arms = " vs ".join(a.label for a in self.arms)
        return f"{self.market_name} market, {names} at the start; seed {self.seed_value}; {arms}"


def policy_choices() -> list[str]:
    """CS policies the page offers (conf/policy/)."""
    return group_options("policy")


def market_choices() -> list[str]:
    return group_options("market")
