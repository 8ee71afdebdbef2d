"""`envsync`: plan, apply, validate, status, repair, drift, refdata, push, approve and reject from a shell.

Targets are connection URLs (`--target mysql://user:pass@host:port/db?tls=true&ca=ca.pem`) or
env names (`--env staging`) that local mode resolves from the stand-ins (`resolve_local_env`).
Exit codes: 0 ok / nothing to do, 1 differences or pending work, 2 error (with `--json`, the
error is a JSON object on stdout), 141 when the reader of the output left (`envsync ... | head`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from envsync import lint
from envsync.cli import approval as approval_cli
from envsync.cli.progress import Progress
from envsync.errors import EXIT_ERROR, EnvsyncError
from envsync.migrations import migrate
from envsync.mysql.connection import ConnectionInfo, UrlTarget, connect, parse_url
from envsync.mysql.lock import schema_lock

OK, DIFFERENCES, ERROR = 0, 1, EXIT_ERROR
BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


class CliError(EnvsyncError, RuntimeError):
    """A usage or configuration error the user can fix."""


# ---------------------------------------------------------------- target resolution

def local_envs_file(start: Optional[Path] = None) -> Path:
    """The stand-ins' envs.json: $ENVSYNC_LOCAL_DIR, else the `.local/` of the project this runs
    in (the nearest one at or above the working directory), as `envsync-local` writes it."""
    configured = os.environ.get("ENVSYNC_LOCAL_DIR")
    if configured:
        return Path(configured) / "envs.json"
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".local" / "envs.json").is_file():
            return folder / ".local" / "envs.json"
    return here / ".local" / "envs.json"


def local_env_entry(name: str, envs_file: Optional[Path] = None) -> Dict[str, Any]:
    """The env's record in the stand-ins' envs.json; an unknown name is an error naming the
    known ones (never a fallback: a typo must not reach another account or database)."""
    path = envs_file or local_envs_file()
    try:
        envs = json.loads(path.read_text())
    except OSError:
        raise CliError(
            f"--env {name}: local mode file {path} not found (start the stand-ins first)"
        ) from None
    if name not in envs:
        raise CliError(f"--env {name}: not in {path} (known: {', '.join(sorted(envs))})")
    return dict(envs[name])


def local_mode(envs_file: Optional[Path] = None) -> bool:
    """Local mode: the stand-ins' envs.json exists, or $ENVSYNC_LOCAL_DIR names where it should."""
    return bool(os.environ.get("ENVSYNC_LOCAL_DIR")) or (envs_file or local_envs_file()).is_file()


def found_config_dir() -> Optional[Path]:
    """The project's config/ ($ENVSYNC_CONFIG_DIR, else `project_config_dir`), or None when
    this runs outside a project."""
    configured = os.environ.get("ENVSYNC_CONFIG_DIR")
    if configured:
        return Path(configured)
    try:
        return project_config_dir()
    except CliError:
        return None


def known_envs(envs_file: Optional[Path] = None) -> Optional[List[str]]:
    """The env names this CLI knows: the stand-ins' (local mode), else the project's chain
    (`envs:` in config/config.yaml); None when it runs outside both (names are then only
    checked for shape)."""
    if local_mode(envs_file):
        path = envs_file or local_envs_file()
        try:
            return sorted(json.loads(path.read_text()))
        except OSError:
            raise CliError(f"local mode file {path} not found (start the stand-ins first)") from None
    config = found_config_dir()
    if config is None:
        return None
    # the plugin's reader, as the stacks get the chain (the CLI's side, not the Lambda's)
    from envsync_sceptre.config.chain import chain_names
    from envsync_sceptre.config.configfile import EnvConfigError
    from envsync_sceptre.config.envconfig import read_shared_values

    try:
        return sorted(chain_names(read_shared_values(config)))
    except EnvConfigError as error:
        raise CliError(str(error)) from None


ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{1,15}$")  # the sync stack's Env pattern


def check_env(name: str, option: str = "--env", envs_file: Optional[Path] = None) -> str:
    """`name` if it is an env this CLI knows; else an error listing the known ones."""
    known = known_envs(envs_file)
    if known is not None and name not in known:
        where = (envs_file or local_envs_file()) if local_mode(envs_file) else found_config_dir()
        raise CliError(f"{option} {name}: not in {where} (known: {', '.join(known)})")
    if known is None and not ENV_NAME.match(name):
        raise CliError(f"{option} {name}: not an env name (lower case letters, digits and -, 2-16 characters)")
    return name


def env_approval_mode(name: str) -> str:
    """What the env's config says about approval (`approval:` in config/<env>/config.yaml,
    else config/config.yaml; `none` outside a project): `envsync apply` honours it."""
    config = found_config_dir()
    if config is None:
        return "none"
    # the plugin's reader and merge rule, as the stacks get the value (the CLI's side, not the Lambda's)
    from envsync_sceptre.config.configfile import EnvConfigError
    from envsync_sceptre.config.envconfig import env_value

    try:
        mode, _ = env_value(config, name, "approval")
    except EnvConfigError as error:
        raise CliError(str(error)) from None
    return str(mode or "none")


def resolve_local_env(name: str, user: str = "root", envs_file: Optional[Path] = None) -> UrlTarget:
    """An env name -> its local stand-in, from the launcher's envs.json (the one place to adapt)."""
    path = envs_file or local_envs_file()
    env = local_env_entry(name, path)
    account = env.get("users", {}).get(user)
    if account is None:
        raise CliError(f"--env {name}: no user {user!r} in {path}")
    ca_bundle = env.get("ca_bundle")
    info = ConnectionInfo(host=env["host"], port=int(env["port"]), database=env["database"],
                          user=account["user"], secret_arn="", tls=bool(ca_bundle))
    return UrlTarget(info=info, password=account.get("password", ""), ca_bundle=ca_bundle)


def upstream_env_of(name: Optional[str], envs_file: Optional[Path] = None) -> Optional[str]:
    """The env `name` pulls from: the one before it in config/config.yaml `envs:`, which `envsync-local` writes into
    the envs file (so the chain has one home). None for the chain's source or an unknown env
    (which `resolve_local_env` then names)."""
    if not name or not local_mode(envs_file):
        return None
    return local_env_entry(name, envs_file).get("upstream")


def _upstream_env(args: argparse.Namespace) -> Optional[str]:
    """The upstream a command compares with: --upstream-env, else (without --upstream URL) the
    chain's upstream of --env."""
    return args.upstream_env or (upstream_env_of(args.env) if not args.upstream else None)


def _target(url: Optional[str], env: Optional[str], what: str) -> UrlTarget:
    if url:
        return parse_url(url)
    if env:
        return resolve_local_env(env)
    raise CliError(f"give the {what} as --{what} URL or --{what}-env NAME" if what != "target"
                   else "give the target as --target URL or --env NAME")


def side_names(left: UrlTarget, left_env: Optional[str], right: UrlTarget,
               right_env: Optional[str]) -> Tuple[str, str]:
    """How reports name two sides: the env, else the URL's database; where those agree,
    host:port/database, so `only in X` always says which side."""
    names = (left_env or left.info.database, right_env or right.info.database)
    if names[0] == names[1]:
        names = (f"{left.info.address}/{left.info.database}", f"{right.info.address}/{right.info.database}")
    return names


def _open(target: UrlTarget, env_name: Optional[str] = None) -> Any:
    return connect(target.info, target.password, ca_bundle=target.ca_bundle, env_name=env_name)


def _source(args: argparse.Namespace, own_bucket: bool = False) -> Any:
    """Where the env's scripts come from, as its Lambda reads them: --scripts DIR; else the
    upstream's history (--upstream, --upstream-env, or the chain's upstream of --env); else,
    with `own_bucket` (plan, validate) and an --env that pulls from no upstream (the chain's
    source, dev), the env's own migration bucket."""
    if args.scripts:
        return migrate.DirectorySource(args.scripts, env_name=args.env or "local")
    upstream_env = _upstream_env(args)
    if args.upstream or upstream_env:
        upstream = _target(args.upstream, upstream_env, "upstream")
        return migrate.UpstreamHistorySource(_open(upstream, upstream_env),
                                             upstream_env or upstream.info.database)
    if own_bucket and args.env:
        return _bucket_source(args.env, getattr(args, "role_arn", None))
    raise CliError("give the scripts as --scripts DIR, or the upstream as --upstream URL "
                   "or --upstream-env NAME")


def _bucket_source(env: str, role_arn: Optional[str]) -> Any:
    """The env's migration bucket (`envsync-<env>-migrations-<account>`), read as its approver
    role (envsync-<env>-approver: ListBucket on migrations/, GetObject and, through S3, Decrypt
    with the env key): offline the stand-ins name the role, against AWS --role-arn or a profile
    that is it. An env that pulls from an upstream holds no scripts in its bucket: refused."""
    from envsync import aws
    from envsync.migrations import push

    if not local_mode():
        config = found_config_dir()
        if config is not None:
            from envsync_sceptre.config.configfile import EnvConfigError
            from envsync_sceptre.config.envconfig import env_value

            try:
                upstream, _ = env_value(config, env, "upstream_env")
            except EnvConfigError as error:
                raise CliError(str(error)) from None
            if upstream:
                raise CliError(f"--env {env} applies {upstream}'s history, not scripts of its own bucket: give "
                               f"{upstream}'s read-only user as --upstream URL")
    session, endpoint_url = approval_cli.aws_session(env, role_arn, purpose="plan")
    account = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Account"]
    return aws.S3ScriptSource(session.client("s3", endpoint_url=endpoint_url), push.bucket_name(env, account),
                              env_name=env, prefix=push.PREFIX)


# ---------------------------------------------------------------- output

def table(headers: Sequence[str], rows: List[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _emit(args: argparse.Namespace, data: Dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _issues_text(issues: List[migrate.Issue], withheld: List[Dict[str, str]]) -> str:
    lines = [f"REFUSED {i.kind}: {i.message}" for i in issues]
    lines += [f"withheld {w['script_name']}: {w['reason']}" for w in withheld]
    return "\n".join(lines)


# ---------------------------------------------------------------- commands

def cmd_plan(args: argparse.Namespace) -> int:
    connection = _open(_target(args.target, args.env, "target"), args.env)
    plan = migrate.make_plan(connection, _source(args, own_bucket=True))
    findings = lint.lint_plan(connection, plan.pending)
    by_statement: Dict[Tuple[str, int], List[lint.Finding]] = {}
    for finding in findings:
        by_statement.setdefault((finding.script_name, finding.statement), []).append(finding)
    parts = []
    for planned in plan.pending:
        parts.append(f"-- {planned.script.name} (checksum {planned.script.checksum[:12]}…)"
                     + (f", resuming at statement {planned.resume_from}" if planned.resume_from > 1 else ""))
        for statement in planned.script.statements[planned.resume_from - 1:]:
            flags = "".join(f"\n-- DESTRUCTIVE {f.kind}: {f.detail}"
                            for f in by_statement.get((planned.script.name, statement.number), []))
            parts.append(f"-- statement {statement.number} (line {statement.line}){flags}\n{statement.sql};")
    if not plan.pending:
        parts.append("nothing to apply")
    if findings:
        parts.append(f"destructive: {lint.summary(findings)}")
        parts += [f"  {f.kind}: {f.label}: {f.detail}" for f in findings]
    extra = _issues_text(plan.issues, plan.withheld)
    data = {**plan.to_dict(), "destructive": [f.to_dict() for f in findings]}
    _emit(args, data, "\n".join(parts) + ("\n" + extra if extra else ""))
    return DIFFERENCES if plan.pending or plan.issues else OK


def cmd_apply(args: argparse.Namespace) -> int:
    target = _target(args.target, args.env, "target")
    connection = _open(target, args.env)
    mode, glass = _gate(args)
    source = _source(args)
    approval = None
    if glass is not None:  # what is pending now, approved by this person (a plan that moves is refused)
        from envsync.approval import break_glass

        plan = migrate.make_plan(connection, source)
        approval = break_glass.approval_for(plan.pending, glass) if plan.pending else None
    with Progress(json_output=args.json) as progress:
        result = migrate.apply(connection, source, schema=target.info.database,
                               script_connection=_open(target, args.env), progress=progress.statement,
                               env_name=args.env or target.info.database, lock_timeout=args.lock_timeout,
                               approval=approval, approval_mode=mode)
    lines = [f"applied {a['script_name']} in {a['duration_ms']} ms" for a in result.applied]
    lines.append(f"status: {result.status}")
    if result.error and result.status in ("failed", "refused"):
        lines.append(f"error: {result.error}")
    if result.status == "refused" and approval is None and not result.issues:
        lines.append(f"In an emergency: envsync apply --env {args.env} --break-glass --reason \"...\" "
                     "(recorded in history, on the topic and in the BreakGlassApplies metric)")
    data = result.to_dict()
    if glass is not None and approval is not None:
        outcome = (f"{result.status}: " + (", ".join(a["script_name"] for a in result.applied) or "nothing applied")
                   + (f"; {result.notice or result.error}" if result.status in ("failed", "refused") else ""))
        data["break_glass"] = _break_glass_done(connection, glass, "migrations", outcome, approval["digest"])
        lines += data["break_glass"]
    extra = _issues_text(result.issues, result.withheld)
    _emit(args, data, "\n".join(lines) + ("\n" + extra if extra else ""))
    return {"up_to_date": OK, "applied": OK, "continue": DIFFERENCES}.get(result.status, ERROR)


def _gate(args: argparse.Namespace) -> Tuple[str, Any]:
    """(the env's approval mode, a BreakGlass when --break-glass is given and the env has a gate).
    The env is the one --env names (its config's `approval`); a bare --target names none."""
    mode = env_approval_mode(args.env) if args.env else "none"
    if not getattr(args, "break_glass", False):
        return mode, None
    reason = (args.reason or "").strip()
    if not reason:
        raise CliError("--break-glass needs --reason \"...\": it goes into the env's history, its topic "
                       "and the BreakGlassApplies metric")
    if mode == "none":
        raise CliError(f"--break-glass: {args.env or 'the target'} has no approval gate (approval: none); "
                       "apply without --break-glass")
    from envsync.approval import break_glass

    return mode, break_glass.BreakGlass(env=args.env, reason=reason)


def _break_glass_done(connection: Any, glass: Any, what: str, outcome: str, digest: Optional[str] = None) -> List[str]:
    """Record the break-glass apply in the env's database, then tell its topic and metric."""
    from envsync.approval import break_glass

    break_glass.record(connection, glass, what, outcome, digest)
    said = [f"BREAK-GLASS recorded in {break_glass.TABLE}: {glass.who}, {glass.at.isoformat(timespec='seconds')}, "
            f"reason: {glass.reason}"]
    try:
        session, endpoint_url, account_id = _operator_session(glass.env)
        problems = break_glass.notify(session, endpoint_url, account_id, glass, what, outcome)
    except Exception as error:  # the row is written: say what did not reach AWS
        problems = [f"could not reach AWS ({type(error).__name__}: {error})"]
    if problems:
        print("envsync: break-glass: " + "; ".join(problems) + ". Tell the env's approvers yourself.",
              file=sys.stderr)
    else:
        said.append(f"published to envsync-{glass.env}-sync and counted in envsync/BreakGlassApplies")
    return said


def _operator_session(env: str) -> Tuple[Any, Optional[str], str]:
    """(session, endpoint, account) of the person at the keyboard in the env's account: in local
    mode the stand-in's, as its deployer (as envsync-local reaches each account); else the
    caller's own credentials."""
    import boto3

    if local_mode():
        local = local_env_entry(env).get("aws")
        if not local:
            raise CliError(f"--env {env}: {local_envs_file()} names no AWS stand-in for it")
        account_id = str(local_env_entry(env)["account_id"])
        base = boto3.Session(aws_access_key_id=local["access_key_id"],
                             aws_secret_access_key=local["secret_access_key"], region_name=local["region"])
        credentials = base.client("sts", endpoint_url=local["endpoint_url"]).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/envsync-deployer",
            RoleSessionName="envsync-break-glass")["Credentials"]
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"], region_name=local["region"])
        return session, local["endpoint_url"], account_id
    session = boto3.Session()
    return session, None, session.client("sts").get_caller_identity()["Account"]


def cmd_validate(args: argparse.Namespace) -> int:
    connection = _open(_target(args.target, args.env, "target"), args.env)
    source = _source(args, own_bucket=True)
    plan = migrate.make_plan(connection, source)
    pending = [p.script.name for p in plan.pending]
    text = _issues_text(plan.issues, []) or (
        f"valid against {source.describe()}: " + (f"pending {', '.join(pending)}" if pending else "nothing pending"))
    _emit(args, {"valid": not plan.issues, "issues": [i.to_dict() for i in plan.issues], "pending": pending,
                 "source": source.describe()}, text)
    return DIFFERENCES if plan.issues else OK


def _address(connection: Any) -> str:
    """user@host:port/database of an open connection, for an error that says where."""
    database = connection.db.decode() if isinstance(connection.db, bytes) else connection.db
    user = connection.user.decode() if isinstance(connection.user, bytes) else connection.user
    return f"{user}@{connection.host}:{connection.port}/{database}"


@contextlib.contextmanager
def _reading_history(what: str) -> Any:
    """A server error while reading a history as one line: what, where, the error's code and
    name; never the server's words (they can quote row values) nor a driver traceback."""
    import pymysql

    from envsync.mysql.connection import server_error_notice

    try:
        yield
    except pymysql.MySQLError as error:
        raise CliError(f"cannot read {what}: {server_error_notice(error)}") from None


def cmd_status(args: argparse.Namespace) -> int:
    from envsync.migrations import history

    target = _target(args.target, args.env, "target")
    connection = _open(target, args.env)
    name = args.env or target.info.database
    with _reading_history(f"{name}'s migration history ({history.TABLE} in {_address(connection)})"):
        rows, absent = history.read_rows(connection), not history.table_exists(connection)
    pending, issues, withheld = [], [], []
    if args.scripts or args.upstream or args.upstream_env or upstream_env_of(args.env):
        source = _source(args)
        where = f" in {_address(source.connection)}" if hasattr(source, "connection") else ""
        with _reading_history(f"the scripts of {name}: {source.describe()}{where}"):
            plan = migrate.make_plan(connection, source)
        rows, pending, issues, withheld = plan.applied, plan.pending, plan.issues, plan.withheld
    body = [(r.version, r.script_name, r.state, f"{r.statements_applied}/{r.statement_count}",
             r.checksum[:12], r.applied_at, r.source_env) for r in rows]
    body += [(p.script.version, p.script.name, "pending", f"0/{len(p.script.statements)}",
              p.script.checksum[:12], None, "") for p in pending if p.resume_from == 1]
    text = table(["version", "script", "state", "statements", "checksum", "applied_at", "source"], body)
    if absent:
        text += f"\nno {history.TABLE} in {_address(connection)} yet: nothing has been applied to {name}"
    for row in rows:
        if row.state != "success" and row.error_text:
            text += f"\n{row.script_name}: {row.error_text}"
    extra = _issues_text(issues, withheld)
    data = {"history": [r.to_dict() for r in rows], "pending": [p.to_dict() for p in pending],
            "issues": [i.to_dict() for i in issues], "withheld": withheld}
    text += "\n" + extra if extra else ""
    # The env's state machine: runs that wait for a person, why the last failed run failed.
    runs = approval_cli.runs_status(args.env, args.role_arn) if args.env else None
    if runs is not None:
        text += "\n\n" + runs[0]
        data["runs"] = runs[1]
    _emit(args, data, text)
    if runs is not None and runs[1].get("error"):
        return ERROR
    # A gated env whose deployed machine does not wait for a person is a finding, not a state.
    unfinished = any(r.state != "success" for r in rows) or bool(runs and runs[1]["waiting"]) \
        or bool(runs and runs[1]["gate"]["required"] and not runs[1]["gate"]["waits_for_approval"])
    return DIFFERENCES if pending or issues or unfinished else OK


def cmd_repair(args: argparse.Namespace) -> int:
    target = _target(args.target, args.env, "target")
    message = migrate.repair(_open(target, args.env), schema=target.info.database,
                             version=args.version, resolution=args.resolution,
                             statements_applied=args.statements_applied)
    _emit(args, {"status": "repaired", "message": message}, message)
    return OK


def cmd_drift(args: argparse.Namespace) -> int:
    from envsync.drift import introspect, schemadiff

    target = _target(args.target, args.env, "target")
    other_env = _upstream_env(args)
    other = _target(args.upstream, other_env, "upstream")
    left = introspect.load_schema(_open(other, other_env), other.info.database)
    right = introspect.load_schema(_open(target, args.env), target.info.database)
    left_name, right_name = side_names(other, other_env, target, args.env)
    report = schemadiff.diff(left, right, left_name=left_name, right_name=right_name)
    text = "\n".join(report.lines()) or f"no drift between {left_name} and {right_name}"
    _emit(args, report.to_dict(), "\n".join([text, *report.not_compared_lines()]))
    return DIFFERENCES if report.count else OK


def _refdata_until_done(run: Any, source_conn: Any, target_conn: Any, config: Any,
                        force: bool) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The CLI has no time limit: call again with the cursor while the engine says continue."""
    cursor = None
    tables: Dict[str, Dict[str, Any]] = {}
    while True:
        result = run(source_conn, target_conn, config, cursor=cursor, force=force).to_dict()
        for entry in result.get("tables", []):  # a later call reports a table again only when it reaches it
            earlier = tables.get(entry["table"])
            if earlier is not None and earlier["state"] == "partial":  # resumed: counts add up
                for count in ("inserted", "updated", "deleted", "chunks_compared", "chunks_differing"):
                    entry[count] += earlier[count]
            if entry["state"] != "not_reached" or earlier is None:
                tables[entry["table"]] = entry
        if result.get("status") != "continue":
            return result, tables
        cursor = result.get("cursor")


def project_config_dir(start: Optional[Path] = None) -> Path:
    """The Sceptre `config/` of the project this runs in: the nearest at or above the working
    directory that holds a config.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "config" / "config.yaml").is_file():
            return folder / "config"
    raise CliError(f"no config/config.yaml at or above {here}: run from the project, or give --config-dir")


def _refdata_config(args: argparse.Namespace) -> Tuple[Any, str]:
    """The allow-list and where it came from: --config FILE (JSON), else the env's value in
    config/, merged as the env's sync stack gets it (envsync_sceptre's config model)."""
    from envsync import refdata

    if args.config:
        config_path = Path(args.config)
        try:
            return refdata.RefdataConfig.from_dict(json.loads(config_path.read_text())), str(config_path)
        except ValueError as error:  # JSONDecodeError and RefdataConfigError: say which file
            kind = "not JSON: " if isinstance(error, json.JSONDecodeError) else ""
            raise CliError(f"refdata config {config_path}: {kind}{error}") from None
        except OSError as error:
            raise CliError(f"refdata config {config_path}: {error.strerror}") from None
    if not args.env:
        raise CliError("refdata: give --env NAME (its allow-list is read from config/) or --config FILE")
    from envsync_sceptre.config.configfile import EnvConfigError
    from envsync_sceptre.config.envconfig import pulled_refdata_config

    config_dir = Path(args.config_dir) if args.config_dir else project_config_dir()
    try:
        value, origin = pulled_refdata_config(config_dir, args.env)
        return refdata.RefdataConfig.from_dict(value), origin
    except (EnvConfigError, refdata.RefdataConfigError) as error:
        raise CliError(f"refdata config for --env {args.env}: {error}") from None


def cmd_refdata(args: argparse.Namespace) -> int:
    from envsync import refdata

    config, config_path = _refdata_config(args)
    target = _target(args.target, args.env, "target")
    other_env = _upstream_env(args)
    source = _target(args.upstream, other_env, "upstream")
    source_conn, target_conn = _open(source, other_env), _open(target, args.env)
    applying = args.refdata_command == "apply"
    mode, glass = _gate(args) if applying else ("none", None)
    if applying and mode != "none" and glass is None:
        _refdata_needs_no_approval(args.env, mode, source_conn, target_conn, config, args.force)
    run = refdata.apply if applying else refdata.plan
    # One writer per schema, as in the Lambda: an apply takes the schema's envsync lock.
    writer = (schema_lock(target_conn, target.info.database, args.lock_timeout)
              if applying else contextlib.nullcontext())
    with writer, Progress(json_output=args.json) as progress, progress.refdata_events():
        result, tables = _refdata_until_done(run, source_conn, target_conn, config, args.force)
    result["tables"] = list(tables.values())
    result["rows_changed"] = sum(t["inserted"] + t["updated"] + t["deleted"] for t in result["tables"])
    failed = [t for t in result["tables"] if t["state"] in ("drift", "refused")]
    text = refdata_text(result, str(config_path))
    if glass is not None and result["rows_changed"]:
        changed = ", ".join(f"{t['table']} +{t['inserted']} ~{t['updated']} -{t['deleted']}"
                            for t in result["tables"] if t["inserted"] + t["updated"] + t["deleted"])
        result["break_glass"] = _break_glass_done(target_conn, glass, "refdata", f"applied: {changed}")
        text += "\n" + "\n".join(result["break_glass"])
    _emit(args, result, text)
    if failed:
        if args.json:  # the text went to stdout; keep the reason on stderr too
            print("\n".join(_failure_line(t, str(config_path)) for t in failed), file=sys.stderr)
        return ERROR
    if args.refdata_command == "plan":
        return DIFFERENCES if result.get("rows_changed") else OK
    return OK


def cmd_push(args: argparse.Namespace) -> int:
    """Upload migration scripts to the env's bucket as its uploader (push.py checks them first)."""
    from envsync.migrations import push

    session, endpoint_url = approval_cli.aws_session(args.env, args.role_arn, role_key="uploader_role_arn",
                                                 purpose="push")
    account = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Account"]
    bucket = args.bucket or push.bucket_name(args.env, account)
    results = push.push(session.client("s3", endpoint_url=endpoint_url), bucket,
                        [Path(name) for name in args.files], replace=args.replace)
    lines = [f"{item.action} s3://{bucket}/{push.PREFIX}{item.name}"
             + (f" (version {item.version_id})" if item.version_id else "") for item in results]
    _emit(args, {"bucket": bucket, "scripts": [vars(item) for item in results]}, "\n".join(lines))
    return OK


def _refdata_needs_no_approval(env: str, mode: str, source_conn: Any, target_conn: Any, config: Any,
                               force: bool) -> None:
    """In an env with an approval gate, reference rows change only in an approved run (or a
    break-glass apply): compare first, and refuse when the changes need a person."""
    from envsync import approval, refdata

    _, tables = _refdata_until_done(refdata.plan, source_conn, target_conn, config, force)
    changes = approval.refdata_changes({"tables": list(tables.values())})
    if approval.needs_approval(mode, [], [], changes):
        counts = ", ".join(f"{t['table']} +{t['inserted']} ~{t['updated']} -{t['deleted']}" for t in changes)
        raise CliError(f"{env}: reference-data changes ({counts}) need a person's approval here (approval: "
                       f"{mode}); nothing applied. The env's state machine asks for it (envsync approve); in an "
                       f"emergency: envsync refdata apply --env {env} --break-glass --reason \"...\"")


def _failure_line(entry: Dict[str, Any], config_path: str) -> str:
    if entry["state"] == "drift":
        details = "; ".join(
            f"{d['kind']}" + (f" {d['column']}" if "column" in d else "")
            + (f" missing on the {d['missing_on']}" if "missing_on" in d else "")
            + (f": source {d['source']} vs target {d['target']}" if "source" in d else "")
            for d in entry["drift"])
        return f"table {entry['table']!r}: drift ({details}); fix the schema or the allow-list in {config_path}"
    return f"{entry['error']} (allow-list: {config_path})"


def refdata_text(result: Dict[str, Any], config_path: str) -> str:
    """One line per table, then the failures spelled out, then the total."""
    from envsync.refdata.show import row_line

    lines = []
    for entry in result.get("tables", []):
        lines.append(f"{entry['table']}: {entry['state']}, +{entry['inserted']} ~{entry['updated']} "
                     f"-{entry['deleted']} ({entry['chunks_differing']} of {entry['chunks_compared']} chunks differ)")
        excluded = entry.get("excluded_columns")
        if excluded and entry["state"] in ("changed", "partial"):
            lines.append(f"  writes {', '.join(entry.get('writes_columns') or [])}; excluded "
                         f"{', '.join(excluded['columns'])}: changed rows {excluded['changed_rows']}, "
                         f"new rows {excluded['new_rows']}")
        shown = entry.get("rows") or []
        lines.extend(row_line(row) for row in shown)
        changed = entry["inserted"] + entry["updated"] + entry["deleted"]
        if shown and changed > len(shown):
            lines.append(f"  ... and {changed - len(shown)} more (--json for machines)")
    lines.extend(_failure_line(t, config_path) for t in result.get("tables", []) if t["state"] in ("drift", "refused"))
    lines.append(f"rows changed: {result.get('rows_changed')}")
    return "\n".join(lines)


# ---------------------------------------------------------------- parser

class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as JSON on stdout when the command line asked for --json."""

    json_errors = False  # set by main() from the raw arguments: argparse fails before it parses

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            print(json.dumps({"status": "error", "error": f"{self.prog}: {message}"}, indent=2))
            sys.exit(ERROR)
        super().error(message)


def break_glass_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--break-glass", action="store_true",
                     help="apply without a person's approval in an env whose config asks for one "
                          "(recorded in its history, published to its topic, counted in BreakGlassApplies)")
    sub.add_argument("--reason", help="why, with --break-glass (kept in full in envsync_break_glass)")


def build_parser(json_errors: bool = False) -> argparse.ArgumentParser:
    _Parser.json_errors = json_errors
    parser = _Parser(prog="envsync", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, source: bool = True) -> None:
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        sub.add_argument("--target", help="mysql://user:pass@host:port/db?tls=true&ca=PATH")
        sub.add_argument("--env", help="env name resolved from the local stand-ins")
        if source:
            sub.add_argument("--scripts", help="directory of V<version>__<description>.sql")
            sub.add_argument("--upstream", help="upstream URL (its history is the source)")
            sub.add_argument("--upstream-env", help="upstream env name (local mode)")

    for name, handler, helptext in (
        ("plan", cmd_plan, "show what would run, with the SQL; applies nothing"),
        ("apply", cmd_apply, "apply pending scripts under the schema lock"),
        ("validate", cmd_validate, "refuse changed, missing, drifted or in-doubt scripts"),
        ("status", cmd_status, "history and pending scripts of the target"),
    ):
        sub = commands.add_parser(name, help=helptext)
        common(sub)
        sub.set_defaults(handler=handler)
        if name == "apply":
            sub.add_argument("--lock-timeout", type=int, default=migrate.DEFAULT_LOCK_TIMEOUT)
            break_glass_options(sub)
        if name == "status":
            sub.add_argument("--role-arn", help="read the env's runs as this role (envsync-<env>-approver); "
                                                "offline the stand-ins name it")
        if name in ("plan", "validate"):
            sub.add_argument("--role-arn", help="the chain's source env (dev) without --scripts: read its migration "
                                                "bucket as this role (envsync-<env>-approver); offline the "
                                                "stand-ins name it")
    sub = commands.add_parser(
        "repair", help="settle a failed or in-doubt script after you checked the schema (README: Repairing a "
                       "failed migration)",
        description="Settle a failed or in-doubt script once you have checked the schema; the next run resumes "
                    "at the first statement not applied. Give --resolution or --statements-applied, not both.")
    common(sub, source=False)
    sub.add_argument("--version", required=True, help="the script's version, e.g. 4 for V4__x.sql")
    sub.add_argument("--resolution", choices=migrate.RESOLUTIONS,
                     help="did the failing (or in-doubt) statement take effect? not-applied (the default for a "
                          "failed script: it raised): the next run runs it again, as the source has it then; "
                          "applied: the next run starts after it. Required for an in-doubt script")
    sub.add_argument("--statements-applied", type=int, metavar="N",
                     help="say outright that statements 1-N took effect: 0 rolls the script back (you undid "
                          "them; the version leaves the history); for a resplit row, the N you counted in "
                          "`envsync plan`")
    sub.set_defaults(handler=cmd_repair)
    sub = commands.add_parser("drift", help="schema differences between upstream and target")
    common(sub)
    sub.set_defaults(handler=cmd_drift)
    sub = commands.add_parser("refdata", help="reference data sync")
    sub.add_argument("refdata_command", choices=("plan", "apply"))
    common(sub)
    sub.add_argument("--config", help="refdata config JSON file ({\"tables\": [...]}) instead of config/; "
                                      "default with --env: the env's refdata_tables as its sync stack gets it")
    sub.add_argument("--config-dir", help="the project's Sceptre config/ (default: found at or above the "
                                          "working directory)")
    sub.add_argument("--force", action="store_true",
                     help="lift the mass-delete guard (emptied or truncated upstream) for this run")
    sub.add_argument("--lock-timeout", type=int, default=migrate.DEFAULT_LOCK_TIMEOUT,
                     help="seconds an apply waits for the schema's envsync lock")
    break_glass_options(sub)
    sub.set_defaults(handler=cmd_refdata)
    sub = commands.add_parser("push", help="upload migration scripts to the env's bucket, names and version "
                                           "order checked first (as the env's uploader: README, Add a migration)")
    sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    sub.add_argument("--env", required=True, help="the env whose bucket takes the scripts (dev: the others "
                                                  "pull from their upstream's history)")
    sub.add_argument("files", nargs="+", metavar="FILE", help="V<version>__<description>.sql files")
    sub.add_argument("--role-arn", help="assume this role first (the env's deployer, envsync-deployer); "
                                        "offline the stand-ins name it")
    sub.add_argument("--bucket", help="the bucket (default: envsync-<env>-migrations-<account>, the sync stack's)")
    sub.add_argument("--replace", action="store_true",
                     help="let a file replace the bucket's script of the same name (fixing a failed script "
                          "in place; an applied script must never change)")
    sub.set_defaults(handler=cmd_push)
    approval_cli.add_commands(commands)
    return parser


def error_text(error: BaseException) -> str:
    """One line an operator can act on: what, where, and for a lost session what to run next."""
    if isinstance(error, EnvsyncError):
        return error.message
    if migrate.is_lost_connection(error):
        code, message = migrate._server_error(error)
        return (f"lost the connection to the database ([{code}] {message}); nothing more was done. "
                "Run `envsync status` to see where the env stands")
    return f"{type(error).__name__}: {error}"


def quiet_when_the_reader_leaves(main: Callable[..., int]) -> Callable[..., int]:
    """A console entry point that ends quietly when its output's reader has gone (`... | head`):
    exit 141 as cat would, no traceback, stdout pointed at /dev/null so the interpreter's final
    flush does not complain either. Every console script of the project is wrapped in it."""
    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> int:
        try:
            try:
                code = main(*args, **kwargs)
            except SystemExit:  # argparse's --help and usage errors: flush what they printed
                sys.stdout.flush()
                raise
            sys.stdout.flush()  # what is still buffered meets the closed pipe here, not at exit
            return code
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return BROKEN_PIPE

    return wrapped


@quiet_when_the_reader_leaves
def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(json_errors="--json" in arguments)
    args = parser.parse_args(arguments)
    try:
        for option in ("env", "upstream_env"):  # every command: a typo is an error, never a guess
            if getattr(args, option, None):
                check_env(getattr(args, option), "--" + option.replace("_", "-"))
        return int(args.handler(args))
    except BrokenPipeError:
        raise  # the wrapper's, not an error to report
    except EnvsyncError as error:
        return _report_error(args, error_text(error), error.exit_code)
    except Exception as error:  # one line, no traceback: these reach operators at 3 a.m.
        return _report_error(args, error_text(error), ERROR)


def _report_error(args: argparse.Namespace, text: str, exit_code: int) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"status": "error", "error": text}, indent=2))
    else:
        print(f"envsync: {text}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
