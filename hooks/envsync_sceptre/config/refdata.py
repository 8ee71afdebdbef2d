"""The reference-data allow-list of each env, and the reader grants that follow from it.

`refdata_tables` (config/config.yaml, or an env's own list, which replaces it) lists the tables
an env pulls from its upstream. An entry may carry `envs: [staging, prod]`, the envs that pull
it (every env when absent), so a table for some envs only is one key, not a list written out
again per env. The read-only user of an env may SELECT exactly what its downstream envs pull:
the union of their lists (docs/ARCHITECTURE.md §4). Both follow from the config by these
functions alone; the stacks get them through `!envsync_refdata_tables`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

ENVS_KEY = "envs"


def listed_tables(raw: Mapping[str, Any], shared: Mapping[str, Any]) -> List[Any]:
    """The env's list as written: its own `refdata_tables`, else the shared one."""
    return list(raw["refdata_tables"] if "refdata_tables" in raw else shared.get("refdata_tables") or [])


def tables_pulled_by(env_name: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The allow-list the env's reference-data step gets: the entries for this env, `envs` dropped."""
    pulled = []
    for entry in listed_tables(raw, shared):
        if not isinstance(entry, Mapping):
            continue  # the engine's parser names it (stackvalues.refdata_problems)
        envs = entry.get(ENVS_KEY)
        if envs is None or env_name in envs:
            pulled.append({key: value for key, value in entry.items() if key != ENVS_KEY})
    return pulled


def pulled_config(env_name: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> Dict[str, Any]:
    """The engine's refdata config for the env: its pulled tables and, when set (the env's file,
    else config/config.yaml), `refdata_max_concurrency`: how many FK groups the state machine's
    Map applies at once."""
    pulled: Dict[str, Any] = {"tables": tables_pulled_by(env_name, raw, shared)}
    concurrency = raw.get("refdata_max_concurrency", shared.get("refdata_max_concurrency"))
    if concurrency is not None:
        pulled["max_concurrency"] = concurrency
    return pulled


def reader_tables(env_name: str, raw_by_env: Mapping[str, Mapping[str, Any]], shared: Mapping[str, Any]) -> List[str]:
    """What the env's read-only user may SELECT: every table its downstream envs pull, once each."""
    names: List[str] = []
    for downstream, raw in sorted(raw_by_env.items()):
        if raw.get("upstream_env") != env_name:
            continue
        for entry in tables_pulled_by(downstream, raw, shared):
            if entry.get("name") not in names:
                names.append(str(entry.get("name")))
    return names


def envs_key_problems(label: str, raw: Mapping[str, Any], shared: Mapping[str, Any], origin: str,
                      env_names: List[str]) -> List[str]:
    """Each entry's `envs` is a list of env names this project has."""
    problems = []
    for entry in listed_tables(raw, shared):
        if not isinstance(entry, Mapping) or entry.get(ENVS_KEY) is None:
            continue
        envs = entry[ENVS_KEY]
        if not isinstance(envs, list) or not all(isinstance(name, str) for name in envs):
            problems.append(f"{origin}: refdata_tables: {entry.get('name')!r}: envs must be a list of env names")
        else:
            unknown = sorted(set(envs) - set(env_names))
            if unknown:
                problems.append(f"{origin}: refdata_tables: {entry.get('name')!r}: envs names unknown env(s) "
                                f"{', '.join(unknown)} (known: {', '.join(sorted(env_names))})")
    return problems
