"""`!envsync_validate`: check every env's config before Sceptre renders or sends anything."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Set

from sceptre.exceptions import InvalidConfigFileError
from sceptre.hooks import Hook

from envsync_sceptre.config.envconfig import EnvConfigError, lifecycle_warnings, load_envs

# Every stack runs the hook; each warning is printed once per Sceptre command.
_PRINTED: Set[str] = set()


class ValidateEnvConfig(Hook):
    """Argument: the project's `config/` directory (`{{ project_path }}/config`)."""

    def run(self) -> None:
        config_dir = Path(str(self.argument))
        if not config_dir.is_dir():
            raise InvalidConfigFileError(f"envsync_validate: config dir {config_dir} not found")
        try:
            load_envs(config_dir)
        except EnvConfigError as err:
            raise InvalidConfigFileError(f"{self.stack.name}: {err}") from err
        for warning in lifecycle_warnings(config_dir):
            if warning not in _PRINTED:
                _PRINTED.add(warning)
                print(f"envsync_validate: {warning}", file=sys.stderr)
