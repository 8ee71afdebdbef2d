"""The per-env configuration model: config files read as data, checked, merged per env."""
