"""The Result of a run: daily figures, one row per agent, headline summary.

Files of a run folder: ``daily.parquet``, ``agents.parquet``,
``summary.json`` and ``config.yaml`` (the resolved config). Each file is
written to a temporary name and renamed, so a killed run never leaves a
half-written file.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agents.base import CHANNELS
from sim.metrics import agent_ltv, platform_summary, side_summary

SEGMENTS = {"sellers": ("smb", "enterprise")}
_AGENT_COLUMNS = ("segment", "channel", "cac", "join_day", "activation_day", "churn_day", "orders",
                  "orders_completed", "revenue", "margin", "satisfaction", "onboarding_quality", "lives")
_SIDE_COLUMNS = {"sellers": ("premium", "quality"), "drivers": ("deactivated", "quality", "earnings"),
                 "buyers": ("purchase_rate", "dropout_p")}


@dataclass
class Result:
    """What a run produced: ``daily`` and ``agents`` tables, ``summary`` dict, ``config``."""

    daily: pd.DataFrame
    agents: pd.DataFrame
    summary: dict
    config: dict = field(default_factory=dict)

    def save(self, path) -> Path:
        """Write the run folder (created if needed); return its path."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        _atomic(path / "daily.parquet", lambda p: self.daily.to_parquet(p, index=False))
        _atomic(path / "agents.parquet", lambda p: self.agents.to_parquet(p, index=False))
        _atomic(path / "summary.json", lambda p: Path(p).write_text(json.dumps(self.summary, indent=2)))
        from omegaconf import OmegaConf
        _atomic(path / "config.yaml", lambda p: Path(p).write_text(OmegaConf.to_yaml(self.config)))
        return path

    @classmethod
    def load(cls, path) -> "Result":
        """Read a run folder written by :meth:`save`."""
        from omegaconf import OmegaConf
        path = Path(path)
        return cls(pd.read_parquet(path / "daily.parquet"), pd.read_parquet(path / "agents.parquet"),
                   json.loads((path / "summary.json").read_text()),
                   OmegaConf.to_container(OmegaConf.load(path / "config.yaml")))


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, target)


def agents_table(model) -> pd.DataFrame:
    """One row per agent ever created, all sides (side, id, traits, outcomes, LTV)."""
    frames = []
    for name, side in model.sides.items():
        # Text columns as categoricals: building a million Python strings cost more than the run's last month.
        data = {"side": pd.Categorical.from_codes(np.zeros(side.n, dtype=np.int8), categories=[name]),
                "id": np.arange(side.n)}
        for col in _AGENT_COLUMNS + _SIDE_COLUMNS.get(name, ()):
            data[col] = getattr(side, col).copy()
        data["channel"] = pd.Categorical.from_codes(data["channel"], categories=list(CHANNELS))
        segments = SEGMENTS.get(name, ("all",))
        data["segment"] = pd.Categorical.from_codes(np.minimum(data["segment"], len(segments) - 1),
                                                    categories=list(segments))
        data["ltv"] = agent_ltv(model, side)
        data["alive_end"] = side.alive.copy()
        frames.append(pd.DataFrame(data))
    table = pd.concat(frames, ignore_index=True)
    for col in ("side", "channel", "segment"):   # concat of differing categories falls back to object
        table[col] = table[col].astype("category")
    return table


def build_result(model) -> Result:
    """Assemble the Result of a finished (or paused) Marketplace."""
    daily = pd.DataFrame(model.ledger.rows)
    summary = {name: side_summary(model, side, daily) for name, side in model.sides.items()}
    summary["platform"] = platform_summary(daily)
    summary["run"] = {"market": model.market.name, "seed": model.cfg.seed, "days": model.day,
                      "experience_effects": model.cfg.experience_effects}
    return Result(daily, agents_table(model), summary, dataclasses.asdict(model.cfg))
