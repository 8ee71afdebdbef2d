"""`!envsync_refdata_tables {config: <project>/config, env: <env>, view: pulled | reader}`: what
follows from the reference-data allow-list for one env (envsync_sceptre.config.refdata):

- `pulled`: the allow-list the env's reference-data step gets, as the engine's JSON config;
- `reader`: the tables the env's read-only user may SELECT, comma-separated: the union of what
  its downstream envs pull.
"""

from __future__ import annotations

import json
from pathlib import Path

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.config.envconfig import (
    EnvConfigError,
    pulled_refdata_config,
    read_env_files,
    read_shared_values,
)
from envsync_sceptre.config.refdata import reader_tables
from envsync_sceptre.resolvers.arguments import require_mapping

VIEWS = ("pulled", "reader")


class RefdataTables(Resolver):
    """Argument: {config: the project's config directory, env: the env, view: pulled | reader}."""

    def setup(self) -> None:
        require_mapping(self, "!envsync_refdata_tables", ("config", "env", "view"))
        if self.argument["view"] not in VIEWS:
            self.raise_invalid_argument_error(f"!envsync_refdata_tables view must be one of {', '.join(VIEWS)}, "
                                              f"got {self.argument['view']!r}")

    def resolve(self) -> str:
        config, env, view = (Path(str(self.argument["config"])), str(self.argument["env"]),
                             str(self.argument["view"]))
        try:
            # the whole env set is checked first (a bad list stops here, named), as the CLI reads it
            pulled, _ = pulled_refdata_config(config, env)
        except EnvConfigError as error:
            raise SceptreException(f"{self.stack.name}: !envsync_refdata_tables: {error}") from error
        if view == "pulled":
            return json.dumps(pulled, separators=(",", ":"))
        raw_by_env = {str(raw.get("env")): raw for raw in read_env_files(config).values()}
        return ",".join(reader_tables(env, raw_by_env, read_shared_values(config)))
