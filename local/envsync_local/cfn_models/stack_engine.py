"""Two changes to moto's CloudFormation engine that the models need (each an upstream PR).

1. Failure states. moto lets an exception raised while creating, updating or deleting a
   resource escape as an HTTP error and leaves the stack `CREATE_IN_PROGRESS` forever (or,
   on delete, forgets a stack whose resources still exist). CloudFormation instead records a
   resource event with the reason and ends in `ROLLBACK_COMPLETE` (create: the resources made
   so far are deleted), `UPDATE_ROLLBACK_FAILED` (moto cannot undo a partial update) or
   `DELETE_FAILED` (the stack stays). Sceptre reads those states and prints the reasons.
2. Delete order. moto deletes a stack's resources in set order and retries what fails;
   CloudFormation deletes dependents first (reverse order of Ref / Fn::GetAtt / Fn::Sub /
   DependsOn). Order matters when a delete has an effect, e.g. a custom resource's Delete runs
   its Lambda function, which must still exist.
3. YAML short forms: `!GetAtt Cluster.Endpoint.Address` names attribute "Endpoint.Address"
   (CloudFormation splits at the first dot; moto at every dot, losing the attribute), and
   `!Condition IsProd` is `{"Condition": "IsProd"}` (moto made it "Fn::Condition", which its
   condition parser evaluates to None, so `!Not [!Condition IsProd]` was always true); a
   condition defined as just another condition (`HasReader: !Condition IsProd`) is that one.
4. Resources whose Condition is false are not listed by DescribeStackResources, and an
   update with the same template and parameter values is "No updates are to be performed".
5. Specific custom resource types. moto sends every `Custom::*` type to its generic
   `CustomModel` (which needs a Lambda container); a model registered for an exact
   `Custom::Name` type is used instead.
6. DescribeStacks' parameters as CloudFormation answers them (`_parameter_list`): a
   List<...> parameter as its text, a NoEcho parameter as `****`.
7. `DeletionPolicy: RetainExceptOnCreate` (moto knows only `Retain`, and deleted such a
   resource with its stack): kept when the stack is deleted, deleted by the rollback of a
   failed create, so a retry of the create does not meet it again.
8. A list item that is `AWS::NoValue` (`!If [Cond, item, !Ref AWS::NoValue]`) is dropped,
   as CloudFormation drops it; moto kept a null, which IAM's policy validator refuses.
9. An error raised while creating a resource is that resource's failure (a CREATE_FAILED
   event naming it, the stack's reason "The following resource(s) failed: [Id]. ..."), as
   CloudFormation reports it; moto's own models raise service errors that named no resource
   (a retry meeting a kept bucket or log group said only "already exists").
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, Optional

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.models import CloudFormationBackend, Event, Stack

from envsync_local.cfn_models.template_graph import deletion_order

logger = logging.getLogger(__name__)


class ResourceFailed(Exception):
    """Raised by a model: resource `logical_id` could not be created/updated/deleted."""

    def __init__(self, logical_id: Optional[str], resource_type: str, reason: str):
        super().__init__(reason)
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def _resource_event(stack: Stack, status: str, error: Exception) -> str:
    """Record the failed resource's event; return a one-line reason."""
    reason = str(error) or error.__class__.__name__
    if isinstance(error, ResourceFailed) and error.logical_id:
        stack.events.append(Event(
            stack_id=stack.stack_id, stack_name=stack.name,
            logical_resource_id=error.logical_id, physical_resource_id="",
            resource_type=error.resource_type, resource_status=status,
            resource_status_reason=reason, resource_properties=None,
        ))
        return f"The following resource(s) failed: [{error.logical_id}]. {reason}"
    message = getattr(error, "message", None) or reason
    return f"{error.__class__.__name__}: {message}"


def _create_resources(original: Callable[[Stack], None]) -> Callable[[Stack], None]:
    @functools.wraps(original)
    def create_resources(self: Stack) -> None:
        try:
            original(self)
        except Exception as error:
            logger.warning("stack %s: create failed: %s", self.name, error, exc_info=True)
            reason = _resource_event(self, "CREATE_FAILED", error)
            self.status = "ROLLBACK_IN_PROGRESS"
            self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
            resources = self.resource_map._resource_json_map
            try:
                _resource_map_delete(self.resource_map, rolling_back_create=True)
            except Exception as rollback_error:
                logger.warning("stack %s: rollback failed: %s", self.name, rollback_error, exc_info=True)
                self.status = "ROLLBACK_FAILED"
                self._add_stack_event("ROLLBACK_FAILED", resource_status_reason=str(rollback_error))
            # Only what the rollback could not delete stays the stack's: describing its
            # resources or outputs must not (lazily) create the others again.
            self.resource_map._resource_json_map = {
                logical_id: resource for logical_id, resource in resources.items()
                if resource.get("DeletionPolicy") not in KEPT_ON_CREATE_ROLLBACK
                and not isinstance(self.resource_map._parsed_resources.get(logical_id, ""), str)}
            self.output_map = parsing.OutputMap(self.resource_map, {}, self.stack_id)
            if self.status == "ROLLBACK_FAILED":
                return
            self.status = "ROLLBACK_COMPLETE"
            self._add_stack_event("ROLLBACK_COMPLETE")

    return create_resources


def _update(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def update(self: Stack, *args: Any, **kwargs: Any) -> None:
        try:
            original(self, *args, **kwargs)
        except Exception as error:
            logger.warning("stack %s: update failed: %s", self.name, error, exc_info=True)
            reason = _resource_event(self, "UPDATE_FAILED", error)
            self.status = "UPDATE_ROLLBACK_FAILED"
            self._add_stack_event(
                "UPDATE_ROLLBACK_FAILED",
                resource_status_reason=f"{reason} (moto cannot roll back a partial update)",
            )

    return update


def _delete(original: Callable[[Stack], None]) -> Callable[[Stack], None]:
    @functools.wraps(original)
    def delete(self: Stack) -> None:
        try:
            original(self)
        except Exception as error:
            logger.warning("stack %s: delete failed: %s", self.name, error, exc_info=True)
            reason = _resource_event(self, "DELETE_FAILED", error)
            self.status = "DELETE_FAILED"
            self._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
            raise

    return delete


def _delete_stack(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        stack = next((s for s in self.stacks.values()
                      if name_or_stack_id in (s.stack_id, s.name)), None)
        try:
            original(self, name_or_stack_id)
        except Exception:
            if stack is None or stack.status != "DELETE_FAILED":
                raise
            # The stack and its remaining resources stay, as in CloudFormation.
            self.stacks[stack.stack_id] = stack
            self.deleted_stacks.pop(stack.stack_id, None)

    return delete_stack


# What each DeletionPolicy keeps: on a stack's deletion, and on the rollback of its failed create.
KEPT_ON_DELETE = ("Retain", "RetainExceptOnCreate")
KEPT_ON_CREATE_ROLLBACK = ("Retain",)


def _resource_map_delete(self: parsing.ResourceMap, rolling_back_create: bool = False) -> None:
    """moto's ResourceMap.delete (retry what fails while progress is made), in dependency order."""
    kept = KEPT_ON_CREATE_ROLLBACK if rolling_back_create else KEPT_ON_DELETE
    remaining = [key for key in deletion_order(self._resource_json_map)
                 if self._resource_json_map[key].get("DeletionPolicy") not in kept]
    failures: Dict[str, ResourceFailed] = {}
    previous = len(remaining) + 1
    while remaining and len(remaining) < previous:
        previous = len(remaining)
        for logical_id in list(remaining):
            parsed = self._parsed_resources.get(logical_id)
            try:
                if parsed is not None and not isinstance(parsed, str):
                    self._delete_resource(parsed, self._resource_json_map[logical_id])
                    self._parsed_resources.pop(logical_id)
            except Exception as error:
                failures[logical_id] = ResourceFailed(
                    logical_id, self._resource_json_map[logical_id]["Type"],
                    getattr(error, "reason", None) or getattr(error, "message", None) or str(error))
            else:
                failures.pop(logical_id, None)
                remaining.remove(logical_id)
    if remaining and failures:
        # Every resource left, each with its reason (the last one alone hid the others).
        last = failures[remaining[-1]] if remaining[-1] in failures else list(failures.values())[-1]
        if len(failures) > 1:
            last.reason = "; ".join(f"{logical_id}: {failure.reason}" for logical_id, failure in failures.items())
            last.args = (last.reason,)
        raise last


def _parse_and_create_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_and_create_resource(logical_id: str, resource_json: Dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original(logical_id, resource_json, *args, **kwargs)
        except ResourceFailed as error:
            error.logical_id = error.logical_id or logical_id  # a dependency's failure stays its own
            raise
        except Exception as error:
            message = getattr(error, "message", None) or str(error) or error.__class__.__name__
            raise ResourceFailed(logical_id, resource_json.get("Type", ""),
                                 f"{error.__class__.__name__}: {message}") from error

    return parse_and_create_resource


def _clean_json(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """moto's clean_json (which calls itself through the module), dropping NoValue list items."""
    @functools.wraps(original)
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, list):
            cleaned = [(item, clean_json(item, resources_map)) for item in resource_json]
            # Only an intrinsic (Ref AWS::NoValue, an Fn::If choosing it) resolves to None.
            return [value for item, value in cleaned if not (value is None and isinstance(item, dict))]
        return original(resource_json, resources_map)

    return clean_json


def _resource_class_from_type(original: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(original)
    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type.startswith("Custom::") and resource_type in parsing.get_model_map():
            return parsing.get_model_map()[resource_type]
        return original(resource_type)

    return resource_class_from_type


def _yaml_tag_constructor(original: Callable[..., Any]) -> Callable[..., Any]:
    """`!GetAtt A.B.C` is attribute "B.C" of A (moto splits at every dot)."""

    @functools.wraps(original)
    def yaml_tag_constructor(loader: Any, tag: Any, node: Any) -> Any:
        if tag == "!GetAtt" and isinstance(node.value, str):
            return {"Fn::GetAtt": node.value.split(".", 1)}
        if tag == "!Condition":
            return {"Condition": node.value}
        return original(loader, tag, node)

    return yaml_tag_constructor


def _parse_condition(original: Callable[..., Any]) -> Callable[..., Any]:
    """A condition that is just another condition (`HasReader: !Condition IsProd`)."""

    @functools.wraps(original)
    def parse_condition(condition: Any, resources_map: Any, condition_map: Any) -> Any:
        if isinstance(condition, dict) and list(condition) == ["Condition"]:
            return condition_map[condition["Condition"]]
        return original(condition, resources_map, condition_map)

    return parse_condition


def _validate_different_update(self: Any, incoming_params: Any, stack_body: str, old_stack: Stack) -> None:
    """"No updates are to be performed" when template and parameter values are unchanged.

    moto compared the stack's typed parameters (Number -> int, defaults filled in) with the
    incoming strings, so a stack with a Number parameter was "updated" on every launch.
    """
    from moto.cloudformation.exceptions import ValidationError

    if stack_body is None or old_stack.template != stack_body:
        return
    new_params = self._get_param_values(incoming_params or [], old_stack.parameters)
    old_params = {key: str(value) for key, value in (old_stack.parameters or {}).items()}
    if old_params == {key: str(value) for key, value in new_params.items()}:
        raise ValidationError(old_stack.name, message="No updates are to be performed.")


def _parameter_value(value: Any) -> str:
    """A parameter as DescribeStacks gives it back: the text that was passed."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value) if value is not None else ""


def _parameter_list(self: Stack) -> list:
    """DescribeStacks' Parameters as CloudFormation answers them: a List<...> parameter as the
    comma-separated text (moto answered a Python list repr, so `sceptre diff` saw a change
    that is none), and every NoEcho parameter as `****` (moto compared the value with the
    NoEcho keys, so it echoed them, and never masked a defaulted one)."""
    declared = (self.template_dict or {}).get("Parameters", {})
    # Every NoEcho parameter, defaulted or passed (moto masks only those passed, by value).
    hidden = {key for key, spec in declared.items() if str(spec.get("NoEcho", "")).lower() == "true"}
    return [{"ParameterKey": key, "ParameterValue": "****" if key in hidden else _parameter_value(value)}
            for key, value in self.resource_map.resolved_parameters.items()]


def _string_variables(method: Callable[..., Any]) -> Callable[..., Any]:
    """A function's environment variables as CloudFormation passes them: text (a `!Ref` of a
    Number parameter arrives as "86400"; moto would store the int, and Lambda's own API then
    refuses to write it back)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        template = kwargs.get("cloudformation_json") or next(a for a in args if isinstance(a, dict))
        variables = (template.get("Properties") or {}).get("Environment", {}).get("Variables")
        if isinstance(variables, dict):
            for key, value in variables.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    variables[key] = str(value)
        return method(*args, **kwargs)

    return wrapper


def install() -> None:
    """Apply the changes once (idempotent)."""
    if getattr(Stack, "_envsync_failure_states", False):
        return
    from moto.awslambda.models import LambdaFunction

    for name in ("create_from_cloudformation_json", "update_from_cloudformation_json"):
        setattr(LambdaFunction, name, classmethod(_string_variables(getattr(LambdaFunction, name).__func__)))
    Stack.create_resources = _create_resources(Stack.create_resources)  # type: ignore[method-assign]
    Stack.update = _update(Stack.update)  # type: ignore[method-assign]
    Stack.delete = _delete(Stack.delete)  # type: ignore[method-assign]
    parsing.ResourceMap.delete = _resource_map_delete  # type: ignore[method-assign]
    CloudFormationBackend.delete_stack = _delete_stack(  # type: ignore[method-assign]
        CloudFormationBackend.delete_stack)
    parsing.resource_class_from_type = _resource_class_from_type(  # type: ignore[assignment]
        parsing.resource_class_from_type)
    parsing.parse_condition = _parse_condition(parsing.parse_condition)  # type: ignore[assignment]
    parsing.clean_json = _clean_json(parsing.clean_json)  # type: ignore[assignment]
    parsing.parse_and_create_resource = _parse_and_create_resource(  # type: ignore[assignment]
        parsing.parse_and_create_resource)
    cfn_responses.CloudFormationResponse._validate_different_update = (  # type: ignore[method-assign]
        _validate_different_update)
    # A resource whose Condition is false is no stack resource (moto lists it as an empty one).
    Stack.parameter_list = property(_parameter_list)  # type: ignore[assignment]
    Stack.stack_resources = property(  # type: ignore[assignment]
        lambda self: [resource for resource in self.resource_map.values() if resource is not None])
    for module in (cfn_models, cfn_responses):
        module.yaml_tag_constructor = _yaml_tag_constructor(  # type: ignore[attr-defined]
            module.yaml_tag_constructor)
    Stack._envsync_failure_states = True  # type: ignore[attr-defined]
    assert cfn_models.Stack is Stack
