"""A failed first create, on purpose: each stack's first create fails at a chosen resource.

CloudFormation's rollback of a failed create deletes what the create made, except what
`DeletionPolicy: Retain` keeps (stack_engine's rollback does the same, `RetainExceptOnCreate`
included). A resource with a fixed name that the rollback keeps stops the retry at "already
exists"; a happy-path launch never sees that. With a target set (`envsync-local up
--fail-first-create`, `moto_server --fail-first-create`), the first create of every stack of
every account fails at that resource and rolls back; every later create of the same stack
name is left alone, so a relaunch (Sceptre deletes a ROLLBACK_COMPLETE stack and creates it
again) shows whether the retry succeeds.

Target `last`: the resource nothing else of the stack depends on that comes first in
deletion order, created after every other resource, so everything else exists when it fails.
A logical id: that resource, where the stack has it (and its Condition holds); a stack
without it is created normally.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from typing import Any, Callable, Dict, Optional, Set, Tuple

from moto.cloudformation import parsing
from moto.cloudformation.models import Stack

from envsync_local.cfn_models.stack_engine import ResourceFailed
from envsync_local.cfn_models.template_graph import deletion_order

LAST = "last"

# The logical id the create running in this thread fails at (None: no failure).
_failing: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("envsync_failing", default=None)
_first_creates: Set[Tuple[str, str, str]] = set()  # (account, region, stack name) already failed once
_lock = threading.Lock()


def failure_reason(target: str, logical_id: str) -> str:
    return (f"{logical_id}: creation failed on purpose (first create of the stack, "
            f"--fail-first-create {target})")


def chosen_resource(resources: Dict[str, Any], condition_holds: Callable[[str], bool], target: str) -> Optional[str]:
    """The logical id the first create fails at (pure: the template's Resources and its conditions)."""
    present = {logical_id: resource for logical_id, resource in resources.items()
               if not resource.get("Condition") or condition_holds(resource["Condition"])}
    if target == LAST:
        order = deletion_order(present)
        return order[0] if order else None
    return target if target in present else None


def _first_time(stack: Stack) -> bool:
    key = (stack.account_id, stack.region_name, stack.name)
    with _lock:
        if key in _first_creates:
            return False
        _first_creates.add(key)
        return True


def _create_resources(original: Callable[[Stack], None], target: str) -> Callable[[Stack], None]:
    @functools.wraps(original)
    def create_resources(self: Stack) -> None:
        resources = self.template_dict.get("Resources") or {}
        conditions = self.resource_map.lazy_condition_map
        failing = chosen_resource(resources, lambda name: bool(conditions[name]), target)
        if failing is None or not _first_time(self):
            original(self)
            return
        # Created last (moto creates in the Resources' order, dependencies first).
        resources[failing] = resources.pop(failing)
        token = _failing.set(failing)
        try:
            original(self)
        finally:
            _failing.reset(token)

    return create_resources


def _parse_and_create_resource(original: Callable[..., Any], target: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_and_create_resource(logical_id: str, resource_json: Dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if logical_id == _failing.get():
            raise ResourceFailed(logical_id, resource_json["Type"], failure_reason(target, logical_id))
        return original(logical_id, resource_json, *args, **kwargs)

    return parse_and_create_resource


def install(target: str) -> None:
    """Fail the first create of every stack at `target` (`last` or a logical id)."""
    if not target or getattr(Stack, "_envsync_fail_first_create", None):
        return
    # Outside stack_engine's failure states, which turn the raised failure into the rollback.
    Stack.create_resources = _create_resources(Stack.create_resources, target)  # type: ignore[method-assign]
    parsing.parse_and_create_resource = _parse_and_create_resource(  # type: ignore[assignment]
        parsing.parse_and_create_resource, target)
    Stack._envsync_fail_first_create = target  # type: ignore[attr-defined]
