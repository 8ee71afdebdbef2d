"""Sceptre config files read as plain data: the plugin's one YAML loader, and what an env is.

`envconfig` (the account set) and `stackvalues` (the data-plane values) both build on this
module and never on each other, so neither import waits for the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import jinja2
import yaml


class EnvConfigError(ValueError):
    """One or more env config files hold values that cannot be deployed."""

    def __init__(self, problems: List[str]):
        super().__init__("invalid env config:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EnvConfig:
    """What one env (= one AWS account) is."""

    name: str
    account_id: str
    sceptre_role: str
    vpc_cidr: str
    upstream_env: Optional[str]
    is_prod: bool
    source_file: str


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML where Sceptre's resolver and hook tags (`!stack_output x`, `!envsync_validate`)
    read as their plain scalar text (None for a tagged mapping or list): these files are
    Sceptre's, and only their values are checked here."""


# Its own table of YAML's standard tags: Sceptre registers its resolver classes on
# yaml.SafeLoader when it reads a project, and an inherited table would then build them here.
_ConfigLoader.yaml_constructors = {tag: construct for tag, construct in yaml.SafeLoader.yaml_constructors.items()
                                   if tag is None or tag.startswith("tag:yaml.org,2002:")}
_ConfigLoader.add_multi_constructor("!", lambda loader, _tag, node: loader.construct_scalar(node)
                                    if isinstance(node, yaml.ScalarNode) else None)


def render_as_sceptre(path: Path, label: str, variables: Mapping[str, Any]) -> str:
    """A config file's text after Jinja, as Sceptre renders it: with its parent folder's values as
    variables and the extensions their `j2_environment` names (config/<env>/config.yaml's
    `{{ envsync_env_keys() }}`)."""
    extensions = (variables.get("j2_environment") or {}).get("extensions") or []
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=list(extensions),  # noqa: S701 - YAML, not HTML
                                     loader=jinja2.FileSystemLoader(str(path.parent)))
    try:
        return environment.get_template(path.name).render(dict(variables))
    except jinja2.TemplateError as err:
        raise EnvConfigError([f"{label}: {err}"]) from err
    except ValueError as err:  # what a Jinja global refused (an env with no entry in the chain)
        raise EnvConfigError([f"{label}: {err}"]) from err


def read_config_file(path: Path, label: str, variables: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """One config file as a mapping (empty for an empty file); errors name `label`. With
    `variables`, the file is rendered first (`render_as_sceptre`)."""
    text = render_as_sceptre(path, label, variables) if variables is not None else path.read_text()
    try:
        loaded = yaml.load(text, Loader=_ConfigLoader) or {}  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as err:
        raise EnvConfigError([f"{label}: not valid YAML: {err}"]) from err
    if not isinstance(loaded, dict):
        raise EnvConfigError([f"{label}: expected a mapping, got {type(loaded).__name__}"])
    return loaded
