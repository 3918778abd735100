"""Compose, type-check and validate a run configuration from conf/.

Composition (Hydra) happens here, in experiments/, because sim/ never reads
files. Every way a user's config can be wrong ends as one
:class:`sim.config.ConfigError` paragraph naming the key, the value and what
is allowed.
"""
from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config import Config, ConfigError, validate

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SCHEMA_NAME = "twosided_schema"


def register_schema() -> None:
    """Make the structured schema available to Hydra as ``twosided_schema``."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)


def group_options(group: str) -> list[str]:
    """The options of a config group (the YAML files in conf/<group>/)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/ with Hydra overrides, without running the Hydra app."""
    register_schema()
    overrides = list(overrides or [])
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
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
    return validate(typed)


def load_config(overrides: list[str] | None = None) -> Config:
    """Compose conf/ with overrides (``["market=rides", "seed=3"]``) and validate it."""
    return to_typed(compose_config(overrides))


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
        return ConfigError(key, value, "a known key (see conf/config.yaml and conf/market_base/common.yaml); "
                           "prefix with + only for policy parameters")
    type_match = re.search(r"Value '([^']*)'(?: of type '\w+')? could not be converted to (\w+)", full)
    if type_match:
        value, type_name = type_match.groups()
        allowed = {"Integer": "a whole number", "Float": "a number", "Boolean": "true or false"}.get(type_name, type_name)
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
