"""The Jinja extension config/config.yaml's `j2_environment` loads: `{{ envsync_env_keys() }}` in
config/<env>/config.yaml and `envsync_limits` in the stack files.

Kept apart from `chain` so the engine's tests, which run on a Lambda runtime's Python without
Jinja or Sceptre, can read the chain.
"""

from __future__ import annotations

from typing import Any, Dict

from jinja2 import pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context

from envsync_sceptre.config import stackvalues
from envsync_sceptre.config.chain import env_keys_yaml


@pass_context
def _env_keys_here(context: Context) -> str:
    """`{{ envsync_env_keys() }}` in config/<env>/config.yaml: the folder's env keys, from the
    variables Sceptre renders that file with (config/config.yaml's values and the folder)."""
    folder = str(context.get("stack_group_path") or "")
    return env_keys_yaml(context.get_all(), folder)


def limits() -> Dict[str, int]:
    """The limits the validator enforces, for the stack files to hand to their templates (one
    constant each: a template's MaxValue or threshold renders from it, never a second literal)."""
    return {"max_lag_seconds": stackvalues.MAX_LAG_THRESHOLD_SECONDS}


class EnvKeys(Extension):
    """Jinja extension (config/config.yaml `j2_environment: extensions:`) adding `envsync_env_keys()`
    for config/<env>/config.yaml and `envsync_limits` for the stack files."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.globals["envsync_env_keys"] = _env_keys_here
        environment.globals["envsync_limits"] = limits()
