"""`!envsync_validate`: check every env's config before Sceptre renders or sends anything."""

from __future__ import annotations

from pathlib import Path

from sceptre.exceptions import InvalidConfigFileError
from sceptre.hooks import Hook

from envsync_sceptre.config.envconfig import EnvConfigError, load_envs


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
