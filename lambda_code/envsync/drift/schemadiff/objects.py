"""Per-kind comparison of the schema's programs and views: views, triggers, routines, events."""

from __future__ import annotations

from typing import List

from envsync.drift.introspect import Event, Routine, Trigger, View
from envsync.drift.schemadiff.compare import diff_attributes
from envsync.drift.schemadiff.report import Difference


def diff_event(out: List[Difference], name: str, left: Event, right: Event) -> None:
    diff_attributes(out, "event", name, left, right, ("schedule", "status", "on_completion", "comment", "body"))


def trigger_summary(trigger: Trigger) -> str:
    return f"{trigger.timing} {trigger.event} ON {trigger.table}"


def diff_view(out: List[Difference], name: str, left: View, right: View) -> None:
    diff_attributes(out, "view", name, left, right, ("check_option", "security_type"))
    if left.definition is not None and right.definition is not None:  # None: not shown to the user
        diff_attributes(out, "view", name, left, right, ("definition",))
    if left.algorithm is not None and right.algorithm is not None:  # None: the server does not say
        diff_attributes(out, "view", name, left, right, ("algorithm",))


def diff_trigger(out: List[Difference], name: str, left: Trigger, right: Trigger) -> None:
    diff_attributes(out, "trigger", name, left, right, ("table", "timing", "event", "order", "body"))


def routine_summary(routine: Routine) -> str:
    return _render_parameters(routine) + (f" RETURNS {routine.returns}" if routine.returns else "")


def _render_parameters(routine: Routine) -> str:
    return "(" + ", ".join(
        " ".join(part for part in (p.mode, p.name, p.type) if part) for p in routine.parameters
    ) + ")"


def diff_routine(out: List[Difference], name: str, left: Routine, right: Routine) -> None:
    diff_attributes(
        out, left.type.lower(), name, left, right,
        ("parameters", "returns", "deterministic", "data_access", "security_type", "body", "comment"),
        render={"parameters": _render_parameters},
    )


