"""Compose, type-check and validate a run configuration from conf/.

Composition (Hydra) happens here, in experiments/, because sim/ never reads
files. Every way a user's config can be wrong ends as one
:class:`sim.config.ConfigError` paragraph naming the key, the value and what
is allowed.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.checks import check_memory, did_you_mean
from policies import build_policies
from sim.config import Config, ConfigError, validate
from sim.config_hook import register_config_composer

# The package's conf/, installed as the package twosided_conf (pyproject.toml); a pip install
# unpacks it as plain files, so it is a real folder in editable and non-editable installs alike.
CONF_DIR = Path(str(importlib.resources.files("twosided_conf")))
USER_CONFIG_ENV = "TWOSIDED_CONFIG_DIR"
USER_CONFIG_DEFAULT = Path("~/.config/twosided")
FILE_GROUPS = ("market",)  # groups whose option may be given as the path of a YAML file in a folder of that name
SCHEMA_NAME = "twosided_schema"
SINGLE_CHOICE_GROUPS = ("market", "scale")  # one option per run (policy=[a,b] composes policies)
FREE_PREFIXES = ("policy.",)  # each policy validates its own parameters below policy.<name>


def register_schema() -> None:
    """Make the structured schema available to Hydra as ``twosided_schema``."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)


def user_config_dirs() -> list[Path]:
    """The user's own config folders, searched after the package's conf/ (which they cannot shadow).

    ``$TWOSIDED_CONFIG_DIR`` when set (it must be a folder), else ``~/.config/twosided``
    when it exists. Each holds groups laid out like conf/, e.g. ``market/calibrated.yaml``.
    """
    given = os.environ.get(USER_CONFIG_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_dir():
            raise ConfigError(USER_CONFIG_ENV, given, "a folder holding config groups laid out like conf/ "
                              "(e.g. market/NAME.yaml), or unset")
        return [path.resolve()]
    default = USER_CONFIG_DEFAULT.expanduser()
    return [default.resolve()] if default.is_dir() else []


def config_dirs() -> list[Path]:
    """Every folder configs are read from, in Hydra's search order: conf/ first, then the user's."""
    return [CONF_DIR, *user_config_dirs()]


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files in <dir>/<group>/ of conf/ and the user's folders."""
    return sorted({p.stem for d in config_dirs() for p in (d / group).glob("*.yaml")})


def find_group_file(group: str, name: str) -> Path | None:
    """The YAML file of option ``name`` of ``group``, the first found in :func:`config_dirs` order, or None."""
    return next((d / group / f"{name}.yaml" for d in config_dirs() if (d / group / f"{name}.yaml").is_file()), None)


def group_file(group: str, name: str) -> Path:
    """The YAML file of option ``name`` of ``group`` (:func:`find_group_file`); ConfigError when there is none."""
    found = find_group_file(group, name)
    if found:
        return found
    options = group_options(group)
    raise ConfigError(group, name, "one of " + ", ".join(options) + did_you_mean(name, options))


def quoted(text: str) -> str:
    """``text`` as a quoted Hydra override value (any character but the quote itself is then literal)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_search_path(overrides: list[str]) -> list[str]:
    """The overrides Hydra is given: ``market=PATH.yaml`` becomes ``market=NAME`` with PATH's folder's
    parent searched, and the user's config folders are added to ``hydra.searchpath``.

    This is the one place every command's settings gain the user's configs, for Hydra's app
    (`twosided run`) and its compose API (compare, sensitivity, optimize, the app) alike.
    """
    extra, out = [], []
    for text in overrides:
        key, eq, value = text.partition("=")
        if eq and key.lstrip("+") in FILE_GROUPS and value.endswith((".yaml", ".yml")):
            path = Path(value).expanduser().resolve()
            if not path.is_file() or path.parent.name != key.lstrip("+"):
                raise ConfigError(key, value, f"an option of conf/{key}/ ({', '.join(group_options(key))}) or "
                                  f"an existing YAML file inside a folder named {key}/ (e.g. the {key}/ folder "
                                  f"`twosided calibrate` writes), or put it in ${USER_CONFIG_ENV}/{key}/")
            extra.append(path.parent.parent)
            text = f"{key}={path.stem}"
        out.append(text)
    dirs = [*user_config_dirs(), *extra]
    if not dirs:
        return out
    listed = ",".join(quoted(f"file://{d}") for d in dirs)
    return [*out, f"hydra.searchpath=[{listed}]"]


def schema_keys(node=Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (``market.sellers.commission``, ...); ``policy`` takes any below it."""
    keys = []
    for f in dataclasses.fields(node):
        key = f"{prefix}{f.name}"
        keys.append(key)
        kind = f.type if not isinstance(f.type, str) else getattr(sys.modules[node.__module__], f.type, None)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            keys += schema_keys(type(default), key + ".")
        elif dataclasses.is_dataclass(kind):
            keys += schema_keys(kind, key + ".")
    return keys


def policy_keys() -> list[str]:
    """Every policy parameter as a dotted key (``policy.proactive_outreach.capacity_per_cadence``),
    from conf/policy/."""
    keys = []
    for name in group_options("policy"):
        node = OmegaConf.load(group_file("policy", name))
        stack = [("policy", node)]
        while stack:
            prefix, item = stack.pop()
            for key, value in item.items():
                keys.append(f"{prefix}.{key}")
                if OmegaConf.is_dict(value):
                    stack.append((f"{prefix}.{key}", value))
    return keys


def _is_schema_key(key: str, known: list[str]) -> bool:
    return key in known or key.startswith(FREE_PREFIXES)


def check_overrides(overrides: list[str], multirun: bool = False) -> None:
    """Refuse, before composing, what Hydra would accept and ignore or misread.

    A bare ``=5`` or a word with no ``=``; a sweep (``a,b``, ``range(...)``)
    or a list of markets or scales outside a multirun; a key that the schema
    does not have, even with Hydra's ``+``/``++`` (which would add it unused).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    known = schema_keys()
    for text in overrides:
        key, eq, value = text.partition("=")
        name = key.lstrip("+~")
        if not eq and not key.startswith("~"):
            raise ConfigError(text, None, "key=value, e.g. seed=3 or market=rides (see twosided run --help)")
        if not name:
            raise ConfigError("(no key)", text, "key=value with a key before the =, e.g. seed=3")
        if name.startswith(("hydra.", "hydra/")) or name == "hydra":
            continue
        try:
            parsed = parser.parse_override(text)
        except HydraException as error:  # OverrideParseException, or a token the grammar does not know
            raise ConfigError(name, value, f"a value Hydra can read ({str(error).strip().splitlines()[0]})") from None
        if parsed.is_sweep_override() and not multirun:
            raise ConfigError(name, value, "one value; to run each of several, add -m (a multirun sweep)")
        if name in SINGLE_CHOICE_GROUPS and isinstance(parsed.value(), list):
            raise ConfigError(name, value, f"one option of conf/{name}/ ({', '.join(group_options(name))}); "
                              f"to run several, add -m: twosided run -m {name}={','.join(map(str, parsed.value()))}")
        if key.startswith("+") and name not in SINGLE_CHOICE_GROUPS and not _is_schema_key(name, known):
            raise ConfigError(name, value, "a key of the config (see conf/config.yaml and "
                              "conf/market_base/common.yaml)" + did_you_mean(name, known + policy_keys()))


def compose_config(overrides: list[str] | None = None, multirun: bool = False) -> DictConfig:
    """Compose conf/ with Hydra overrides, without running the Hydra app."""
    return _compose(overrides, multirun)[0]


def compose_run_config(overrides: list[str]) -> tuple[DictConfig, object]:
    """The config of a single ``twosided run`` with its ``hydra`` node, as Hydra's own run composes it (run
    mode, job logging), and the config loader that composed it: ``experiments.run`` runs the job with them,
    so a run composes its config once, not three times (0.3 s each)."""
    return _compose(overrides, False, for_run=True)


def _compose(overrides: list[str] | None, multirun: bool, for_run: bool = False) -> tuple[DictConfig, object]:
    register_schema()
    overrides = with_search_path(list(overrides or []))
    check_overrides(overrides, multirun)
    GlobalHydra.instance().clear()
    try:
        # job_name: the name Hydra's app gives a job of experiments/run.py (its log file, hydra.job.name)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="run"):
            if not for_run:
                return compose(config_name="config", overrides=overrides), None
            hydra = GlobalHydra.instance().hydra
            cfg = hydra.compose_config(config_name="config", overrides=overrides, run_mode=RunMode.RUN,
                                       with_log_configuration=True)
            return cfg, hydra.config_loader
    except (ConfigCompositionException, MissingConfigException, OverrideParseException,
            OmegaConfBaseException) as error:
        raise translate_error(error, overrides) from None
    finally:
        GlobalHydra.instance().clear()


def to_typed(cfg: DictConfig) -> Config:
    """Turn a composed DictConfig into a validated :class:`Config` object."""
    try:
        typed = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:
        raise translate_error(error, []) from None
    validate(typed)
    build_policies(typed.policy, typed.market, typed.cs)   # each policy validates its own parameters
    return typed


@register_config_composer   # so Marketplace(market=..., scale=...) composes through here
def load_config(overrides: list[str] | None = None) -> Config:
    """Compose conf/ with overrides (``["market=rides", "seed=3"]``), validate it and check it fits in memory."""
    cfg = to_typed(compose_config(overrides))
    check_memory(cfg)
    return cfg


def translate_error(error: Exception, overrides: list[str]) -> ConfigError:
    """Turn a Hydra/OmegaConf exception into one ConfigError paragraph."""
    text = str(error)
    cause = error.__cause__ or error.__context__
    full = text + ("\n" + str(cause) if cause else "")
    missing_group = re.search(r"Could not find '(\w+)/([^']*)'", full)
    if missing_group:
        group, option = missing_group.groups()
        return ConfigError(group, option, "one of " + ", ".join(group_options(group)))
    in_group = re.search(r"In '(\w+)/?[^']*': Could not find", full)
    if in_group:
        group = in_group.group(1)
        return ConfigError(group, "?", "one of " + ", ".join(group_options(group)))
    key_match = re.search(r"full_key: ([\w.\[\]]+)", full)
    key = key_match.group(1) if key_match else "?"
    if re.search(r"Key '([\w]+)' not in|Could not override '|not in struct|is not in struct", full):
        name = re.search(r"Could not override '([\w.]+)'|Key '(\w+)' not in", full)
        if name:
            key = next(g for g in name.groups() if g)
        value = _override_value(key, overrides)
        known = schema_keys() + policy_keys()
        full = next((o.lstrip("+~").partition("=")[0] for o in overrides
                     if o.lstrip("+~").partition("=")[0].endswith(key)), key)
        return ConfigError(full, value, "a known key (see conf/config.yaml and conf/market_base/common.yaml)"
                           + did_you_mean(full, known))
    type_match = re.search(r"Value '([^']*)'(?: of type '\w+')? could not be converted to (\w+)", full)
    if type_match:
        value, type_name = type_match.groups()
        allowed = {"Integer": "a whole number written in digits (20000, not 2e4 or 20000.0)", "Float": "a number",
                   "Boolean": "true or false"}.get(type_name, type_name)
        return ConfigError(key, value, allowed)
    bool_match = re.search(r"Value '([^']*)' is not a valid bool", full)
    if bool_match:
        return ConfigError(key, bool_match.group(1), "true or false")
    if "Missing mandatory value" in full:
        return ConfigError(key, "???", "a value must be given")
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return ConfigError(key, _override_value(key, overrides), first_line)


def _override_value(key: str, overrides: list[str]) -> str:
    for item in overrides:
        name, _, value = item.lstrip("+~").partition("=")
        if name == key or name.endswith("." + key):
            return value
    return "?"
