"""The arms of a comparison: a policy, a composition of policies, or a variant with changed parameters.

The value of ``arms=`` (and ``baseline=``) is written in this small syntax::

    tech_touch                                     a policy of conf/policy/
    proactive_outreach+tech_touch   or  [a,b]      a composition (both policies at once)
    proactive_outreach(capacity_per_cadence=80)    a variant: the policy with parameters changed
    proactive_outreach(capacity_per_cadence=80)+tech_touch(weight=0.025)
    segmented(enterprise.weight=0.6)               a nested parameter, by dots
    outreach_x2                                    a named variant of conf/arm/ (a YAML file)

On a shell, quote the whole argument: ``'arms=[tech_touch,tech_touch(weight=0.025)]'``.
Every changed key must be a parameter of the policy's conf/policy/ file; the
values are checked by the policy itself when the arm's config is composed.
An arm is named by its text (or its conf/arm/ file name) and described by what
it changed against the defaults (``weight 0.05 -> 0.025``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from experiments.config import group_file, group_options
from sim.config import ConfigError

ARMS_ALLOWED = ("`all`, or a list of arms: a policy of conf/policy/ ({policies}), a composition a+b or [a,b], "
                "a variant policy(key=value,...) changing parameters of its conf/policy/ file, or a named arm of "
                "conf/arm/ ({named})")


@dataclass(frozen=True)
class Change:
    """One parameter an arm sets: ``policy.key`` from its conf/policy/ default to ``value``."""

    policy: str
    key: str          # dotted below the policy, e.g. ``enterprise.weight``
    default: Any
    value: Any

    def text(self) -> str:
        return f"{self.key} {_show(self.default)} -> {_show(self.value)}"


@dataclass
class Arm:
    """One arm: its name, its policies (in order) and the parameters it changes."""

    name: str
    policies: list
    extra: list = field(default_factory=list)     # further model overrides of this arm (tests, not the CLI)
    changes: list = field(default_factory=list)   # [Change]: policy parameters set by the arm
    description: str = ""                         # a named arm's own words (conf/arm/)

    @property
    def overrides(self) -> list[str]:
        """The Hydra overrides that make this arm's config."""
        policy = self.policies[0] if len(self.policies) == 1 else "[" + ",".join(self.policies) + "]"
        params = [f"policy.{c.policy}.{c.key}={_hydra_value(c.value)}" for c in self.changes]
        return [f"policy={policy}", *params, *self.extra]

    @property
    def changed(self) -> str:
        """What the arm changes, in words: ``tech_touch: weight 0.05 -> 0.025`` ('' for plain policies)."""
        by_policy: dict[str, list[str]] = {}
        for c in self.changes:
            by_policy.setdefault(c.policy, []).append(c.text())
        return "; ".join(f"{p}: " + ", ".join(items) for p, items in by_policy.items())

    @property
    def label(self) -> str:
        """The arm's name with what it changed, for reports (the name alone when that says it all)."""
        return f"{self.name} ({self.changed})" if self.changes and "(" not in self.name else self.name


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:g}"
    return str(value)


def _hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return str(value)


def split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` outside brackets and parentheses; raises ValueError on unbalanced ones."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise ValueError(text)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(text)
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _unwrap(text: str) -> str | None:
    """``[x]`` -> ``x`` when the brackets enclose the whole text, else None."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            split_top(text[1:-1], ",")
        except ValueError:
            return None
        return text[1:-1]
    return None


def _parse_value(raw: str) -> Any:
    """A parameter value as YAML reads it (80 -> int, 0.5 -> float, [drivers] -> list, true -> bool)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.create({"v": OmegaConf.from_dotlist([f"v={raw}"]).v}))["v"]


def flatten(mapping: dict, prefix: str = "") -> dict:
    """A nested mapping -> {dotted key: value}."""
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def policy_defaults(policy: str) -> dict:
    """The flattened parameters of a policy's conf/policy/ file ({dotted key: default})."""
    from omegaconf import OmegaConf

    loaded = OmegaConf.to_container(OmegaConf.load(group_file("policy", policy))) or {}
    return flatten(loaded.get(policy) or {})


class ArmParser:
    """Turns the ``arms=`` / ``baseline=`` values into :class:`Arm` objects (ConfigError on bad input)."""

    def __init__(self, key: str = "arms"):
        self.key = key
        self.policies = group_options("policy")
        self.named = group_options("arm")

    def allowed(self) -> str:
        return ARMS_ALLOWED.format(policies=", ".join(self.policies), named=", ".join(self.named) or "none yet")

    def fail(self, value: Any, why: str = "") -> ConfigError:
        return ConfigError(self.key, value, self.allowed() + (f" (here: {why})" if why else ""))

    def items(self, raw: Any) -> list:
        """The raw ``arms`` value (a CLI string, a YAML list, or a Python list) -> a list of arm items."""
        if isinstance(raw, str):
            text = raw.strip()
            inner = _unwrap(text)
            if inner is None:
                try:
                    split_top(text, ",")
                except ValueError:
                    raise self.fail(raw, "unbalanced brackets or parentheses") from None
                inner = text
            if not inner.strip():
                return []
            return split_top(inner, ",")
        if isinstance(raw, (list, tuple)):
            return list(raw)
        raise self.fail(raw)

    def arm(self, item: Any) -> Arm:
        """One arm item: ``a``, ``a+b``, ``[a,b]``, ``a(k=v)``, a named arm, or a Python list/Arm."""
        if isinstance(item, Arm):
            return item
        if isinstance(item, (list, tuple)):
            terms = [str(t) for t in item]
        elif isinstance(item, str):
            inner = _unwrap(item)
            terms = split_top(inner, ",") if inner is not None else split_top(item, "+")
        else:
            raise self.fail(item)
        terms = [t for t in terms if t]
        if not terms:
            raise self.fail(item, "an empty arm")
        policies: list[str] = []
        changes: list[Change] = []
        for term in terms:
            name, params = self._term(term, item)
            if name in self.named and name not in self.policies:
                if params:
                    raise self.fail(item, f"the named arm {name!r} takes no parameters; change them in "
                                    f"conf/arm/{name}.yaml or use the policy's own name")
                named = self.named_arm(name)
                if len(terms) == 1:
                    return named
                policies += [p for p in named.policies if p not in policies]
                changes += named.changes
                continue
            if name not in self.policies:
                raise self.fail(item, f"{name!r} is neither a policy of conf/policy/ nor an arm of conf/arm/")
            if name in policies:
                raise self.fail(item, f"{name!r} appears twice in one arm")
            policies.append(name)
            changes += self._changes(name, params, item)
        display = "+".join(terms) if not isinstance(item, str) or _unwrap(item) is not None else item.strip()
        return Arm(display.replace(" ", ""), policies, changes=changes)

    def _term(self, term: str, item: Any) -> tuple[str, list[tuple[str, str]]]:
        term = term.strip()
        if "(" not in term:
            return term, []
        if not term.endswith(")"):
            raise self.fail(item, f"{term!r}: write parameters as policy(key=value,...)")
        name, _, body = term[:-1].partition("(")
        params = []
        for part in split_top(body, ","):
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise self.fail(item, f"{part!r} in {term!r}: write parameters as key=value")
            params.append((key.strip(), value.strip()))
        return name.strip(), params

    def _changes(self, policy: str, params: list, item: Any) -> list[Change]:
        defaults = policy_defaults(policy)
        out = []
        for key, raw in params:
            if key not in defaults:
                raise ConfigError(self.key, item, f"parameters of {policy} in conf/policy/{policy}.yaml: "
                                  + (", ".join(defaults) or "none"))
            try:
                value = _parse_value(raw)
            except Exception:  # noqa: BLE001 - any parse failure is the user's value
                raise ConfigError(self.key, item, f"a value for {policy}.{key} such as {defaults[key]!r}") from None
            out.append(Change(policy, key, defaults[key], value))
        return out

    def named_arm(self, name: str) -> Arm:
        """An arm of conf/arm/NAME.yaml: ``policies: {policy: {param: value}}`` and a ``description``."""
        from omegaconf import OmegaConf

        path = group_file("arm", name)
        spec = OmegaConf.to_container(OmegaConf.load(path)) or {}
        unknown = set(spec) - {"policies", "description"}
        policies = spec.get("policies")
        if unknown or not isinstance(policies, dict) or not policies:
            raise ConfigError(f"arm/{name}.yaml", spec, "a mapping with `policies: {policy: {parameter: value}}` "
                              "and an optional `description`")
        names, changes = [], []
        for policy, params in policies.items():
            if policy not in self.policies:
                raise ConfigError(f"arm/{name}.yaml: policies", policy, "a policy of conf/policy/: "
                                  + ", ".join(self.policies))
            names.append(policy)
            flat = flatten(params or {})
            defaults = policy_defaults(policy)
            for key, value in flat.items():
                if key not in defaults:
                    raise ConfigError(f"arm/{name}.yaml: policies.{policy}", key, f"a parameter of {policy}: "
                                      + (", ".join(defaults) or "none"))
                changes.append(Change(policy, key, defaults[key], value))
        return Arm(name, names, changes=changes, description=str(spec.get("description") or ""))

    def parse(self, raw: Any, baseline: Arm | None = None) -> list[Arm]:
        """All arms of ``raw`` (``all``: every policy except the baseline's), duplicates dropped."""
        if raw is None or raw == "all" or raw == ["all"]:
            items: list = [p for p in self.policies if baseline is None or [p] != baseline.policies
                           or baseline.changes]
        else:
            items = self.items(raw)
            if not items:
                raise self.fail(raw, "at least one arm besides the baseline")
        arms, seen = [], {baseline.name} if baseline else set()
        for item in items:
            arm = self.arm(item)
            if arm.name in seen:
                continue
            seen.add(arm.name)
            arms.append(arm)
        if not arms:
            raise self.fail(raw, "at least one arm that differs from the baseline")
        return arms
