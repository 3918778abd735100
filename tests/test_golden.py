"""Golden-output regression: every market x policy at scale=tiny matches its stored summary exactly.

A refactor keeps these bit-identical. An intended change of behaviour
regenerates them with `make golden` and says why in the commit.
"""
import json

import pytest
from golden_cases import CASES, case_path, run_case


def _differences(expected, actual, prefix=""):
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            where = f"{prefix}.{key}" if prefix else key
            if key not in actual:
                out.append(f"{where}: missing (golden {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}: new key ({actual[key]!r})")
            else:
                out += _differences(expected[key], actual[key], where)
        return out
    return [] if expected == actual else [f"{prefix}: golden {expected!r}, now {actual!r}"]


@pytest.mark.parametrize("market,policy", CASES, ids=[f"{m}-{p.count('+') and 'all' or p}" for m, p in CASES])
def test_summary_matches_golden(market, policy):
    path = case_path(market, policy)
    assert path.exists(), f"{path.name} is missing: run `make golden` and commit it with the reason"
    expected = json.loads(path.read_text())
    actual = run_case(market, policy)
    diff = _differences(expected, actual)
    assert not diff, (f"{len(diff)} figures differ from {path.name} (if intended: `make golden`, and say why "
                      "in the commit):\n" + "\n".join(diff[:30]))
