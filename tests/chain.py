"""The promotion chain as config/ holds it: what tests parametrise over instead of writing the
env names out (config/config.yaml `envs:`, read by the plugin's own loader)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Optional, Tuple

from envsync_sceptre.config.envconfig import load_envs, promotion_order

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@cache
def chain(config_dir: Path = CONFIG_DIR) -> Tuple[str, ...]:
    """The env names, upstream first: the source, ..., prod."""
    return tuple(promotion_order(load_envs(config_dir)))


def upstream_of(env: str, config_dir: Path = CONFIG_DIR) -> Optional[str]:
    """The env `env` pulls from (None for the source)."""
    order = chain(config_dir)
    return order[order.index(env) - 1] if order.index(env) > 0 else None


def downstream_of(env: str, config_dir: Path = CONFIG_DIR) -> Optional[str]:
    """The env that pulls from `env` (None for the last, prod)."""
    order = chain(config_dir)
    index = order.index(env)
    return order[index + 1] if index + 1 < len(order) else None
