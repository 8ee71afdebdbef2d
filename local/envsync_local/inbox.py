"""The env's SNS topics as a subscriber sees them: `envsync-local inbox ENV`.

An SQS queue per env (`envsync-<env>-local-inbox`) is subscribed to each of the env's topics
(`envsync-<env>-*`), as an e-mail address would be in AWS. What arrives is moved into the env's
mailbox file (`<state dir>/inbox/<env>.jsonl`), so it can be listed again after the cycle or a
test has read it. Each message is marked with the run it belongs to: the run it names (an
approval request says `Run: <id>`), else the env's latest run started before it was published
(a failure notice, an alarm evaluated at the end of the run).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from envsync_local import executions

RUN_LINE = re.compile(r"^Run: (\S+)$", re.M)
BODY_LINES = 40


def subscribe(handle: Any) -> str:
    """The env's inbox queue, subscribed to every topic of the env (idempotent)."""
    sqs = handle.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"envsync-{handle.name}-local-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns = handle.client("sns")
    topics = [topic["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for topic in page["Topics"]
              if topic["TopicArn"].rsplit(":", 1)[-1].startswith(f"envsync-{handle.name}-")]
    for topic in topics:
        existing = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        if not any(subscription["Endpoint"] == queue_arn for subscription in existing):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def mailbox(state_dir: Path, env: str) -> Path:
    return state_dir / "inbox" / f"{env}.jsonl"


def drain(handle: Any) -> List[Dict[str, Any]]:
    """The messages that arrived since the last drain, oldest first; kept in the mailbox too."""
    sqs = handle.client("sqs")
    received: List[Dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=handle.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for message in batch:
            body = json.loads(message["Body"])
            received.append({"subject": body.get("Subject"), "message": body.get("Message"),
                             "message_id": body.get("MessageId"), "topic": body.get("TopicArn"),
                             "timestamp": body.get("Timestamp")
                             or dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")})
            sqs.delete_message(QueueUrl=handle.inbox_url, ReceiptHandle=message["ReceiptHandle"])
    received.sort(key=lambda item: str(item["timestamp"]))
    if handle.state_dir is not None and received:
        path = mailbox(handle.state_dir, handle.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as kept:
            kept.writelines(json.dumps(item) + "\n" for item in received)
    return received


def read_mailbox(state_dir: Path, env: str) -> List[Dict[str, Any]]:
    path = mailbox(state_dir, env)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.is_file() else []


def _moment(text: str) -> float:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def mark_runs(messages: List[Dict[str, Any]], runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each message with `run`: the run it names, else the latest of `runs` ({name, start})
    started at or before it was published; None before any run."""
    ordered = sorted(runs, key=lambda run: float(run["start"]))
    marked = []
    for message in messages:
        named = RUN_LINE.search(str(message.get("message") or ""))
        run = named.group(1) if named else None
        if run is None:
            published = _moment(message["timestamp"])
            run = next((r["name"] for r in reversed(ordered) if float(r["start"]) <= published), None)
        marked.append({**message, "run": run})
    return marked


def env_runs(executions_dir: Path, env: str) -> List[Dict[str, Any]]:
    """The env's runs of the stand-in's Step Functions: {name, start}."""
    return [{"name": record["name"], "start": float(record["startDate"])}
            for record in executions.records(executions_dir) if record.get("env") == env]


def _body(message: Any) -> List[str]:
    """What a person needs from a message: a text message as it is, a JSON notice's error or
    alarm state (a failure notice carries the whole run state)."""
    text = str(message or "")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            return [f"{error.get('Error')}: {error.get('Cause')}"]
        if "AlarmName" in document:
            return [f"{document['AlarmName']} -> {document.get('NewStateValue')} ({document.get('NewStateReason')})"]
    lines = text.splitlines()
    return lines[:BODY_LINES] + ([f"... ({len(lines) - BODY_LINES} more lines)"] if len(lines) > BODY_LINES else [])


def format_inbox(env: str, messages: List[Dict[str, Any]], limit: Optional[int] = None) -> str:
    """Newest first: time, run, subject, then the body indented."""
    newest = sorted(messages, key=lambda item: str(item["timestamp"]), reverse=True)[:limit]
    if not newest:
        return f"{env}: nothing was published to its topics since the inbox was subscribed"
    lines = [f"{env}: {len(newest)} of {len(messages)} message(s), newest first"]
    for message in newest:
        lines.append(f"\n{message['timestamp']}  run {message.get('run') or '-'}  {message.get('subject') or ''}")
        lines += [f"    | {line}" for line in _body(message.get("message"))]
    return "\n".join(lines)
