"""Handlers the Lambda-runner tests deploy into moto (they report what the runtime gave them)."""

from __future__ import annotations

import os
import time

import boto3


def whoami(event, context):
    return {
        "account": boto3.client("sts").get_caller_identity()["Account"],
        "setting": os.environ.get("SETTING"),
        "echo": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def fail(event, context):
    raise ValueError(f"bad input {event['value']}")


def slow(event, context):
    time.sleep(event["seconds"])
    return "finished"
