"""A small Amazon States Language interpreter for running the deployed state machine offline.

moto stores a state machine but does not execute Lambda tasks. Local mode reads the definition
the sync stack deployed and walks it here, calling each Task through a function the caller
passes in (which runs the real handler) — so the offline run follows exactly the states,
retries, catches and choices that AWS would.

Covers what envsync's definition uses: Task, Choice, Pass, Wait, Succeed, Fail, Map (inline:
ItemsPath, ItemSelector with `$$.Map.Item`, ItemProcessor/Iterator, MaxConcurrency or
MaxConcurrencyPath: that many iterations at once, in threads, results in item order; a failed
iteration fails the Map once the running ones end, and none starts after it, as AWS stops the
rest), Parallel; InputPath,
Parameters (with `.$` paths, JSONPath filters `[?(@.a == 'x')]`, and States.* intrinsics
Format, JsonToString, StringToJson, Array), ResultSelector, ResultPath, OutputPath; Retry
(ErrorEquals, MaxAttempts, IntervalSeconds, BackoffRate) and Catch.

The context object holds `$$.Execution` (Id, Name, Input, StartTime), `$$.StateMachine` (Id,
Name), `$$.State` and, in a task that waits, `$$.Task.Token`.

A top-level Task on a `.waitForTaskToken` resource calls its resource with `$$.Task.Token`
in the context and then pauses: the execution stays RUNNING with a `waiting` snapshot (state,
data, token, deadline from TimeoutSeconds/TimeoutSecondsPath), plain JSON that outlives the
process. `resume(snapshot, outcome)` continues it with what SendTaskSuccess/SendTaskFailure
sent, or with States.Timeout after the deadline, exactly where AWS would.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

TaskInvoker = Callable[[str, Any], Any]
MAX_TRANSITIONS = 10_000
WAIT_FOR_TASK_TOKEN = ".waitForTaskToken"  # noqa: S105 (an ASL resource suffix)
LOCAL_MACHINE_ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:local"


class StatesError(Exception):
    """An error as Step Functions names it (`States.TaskFailed`, a Lambda errorType, ...)."""

    def __init__(self, error: str, cause: str = ""):
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class _Paused(Exception):
    """A `.waitForTaskToken` task was submitted; the execution waits for its token."""

    def __init__(self, waiting: Dict[str, Any]):
        super().__init__(waiting["state"])
        self.waiting = waiting


@dataclass
class Execution:
    status: str  # RUNNING (waiting for a task token) | SUCCEEDED | FAILED
    output: Any = None
    error: Optional[str] = None
    cause: Optional[str] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    waiting: Optional[Dict[str, Any]] = None  # state, data, context, token, deadline, parameters

    def visited(self) -> List[str]:
        return [event["state"] for event in self.history if "state" in event]

    def to_dict(self) -> Dict[str, Any]:
        return {"status": self.status, "output": self.output, "error": self.error, "cause": self.cause,
                "history": self.history, "waiting": self.waiting}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Execution:
        return cls(status=data["status"], output=data.get("output"), error=data.get("error"),
                   cause=data.get("cause"), history=list(data.get("history") or []),
                   waiting=data.get("waiting"))


# ---- JSONPath (the subset ASL uses: $, $.a.b, $.a[0], $$.Execution...) -----------------------

_PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']+)'\]")
# A filter on a list (Paths, not Choice variables): [?(@.key == 'text')], != too, or a number,
# true/false/null literal; [?(@.key)] keeps the items that have the key.
_FILTER = re.compile(r"\[\?\(@\.([A-Za-z0-9_\-]+)(?:\s*(==|!=)\s*('(?:[^']*)'|[^)\s]+))?\)\]")


def _filtered(items: Any, key: str, operator: Optional[str], literal: Optional[str]) -> List[Any]:
    if not isinstance(items, list):
        return []
    if operator is None:
        return [item for item in items if isinstance(item, dict) and key in item]
    expected = literal[1:-1] if literal.startswith("'") else json.loads(literal)
    return [item for item in items if isinstance(item, dict) and key in item
            and (item[key] == expected) == (operator == "==")]


def get_path(data: Any, path: str, context: Optional[Dict[str, Any]] = None) -> Any:
    if path.startswith("$$"):
        data, path = context or {}, path[1:]
    if not path.startswith("$"):
        raise StatesError("States.Runtime", f"invalid path {path!r}")
    value, position = data, 1
    while position < len(path):
        condition = _FILTER.match(path, position)
        if condition:
            value, position = _filtered(value, *condition.groups()), condition.end()
            continue
        match = _PATH_TOKEN.match(path, position)
        if not match:
            raise StatesError("States.Runtime", f"unsupported path {path!r}")
        key = match.group(1) or match.group(3)
        try:
            value = value[int(match.group(2))] if match.group(2) is not None else value[key]
        except (KeyError, IndexError, TypeError) as err:
            raise StatesError("States.Runtime", f"path {path!r} not found in input") from err
        position = match.end()
    return value


def set_path(data: Any, path: Optional[str], result: Any) -> Any:
    """ResultPath semantics: '$' replaces, None discards, '$.a.b' merges into a copy."""
    if path is None:
        return data
    if path == "$":
        return result
    keys = [m.group(1) or m.group(3) for m in _PATH_TOKEN.finditer(path)]
    merged = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = merged
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = result
    return merged


# ---- Parameters / ResultSelector payload templates -------------------------------------------

def _split_args(text: str) -> List[str]:
    args, depth, current, quoted = [], 0, "", False
    for char in text:
        if char == "'" and not current.endswith("\\"):
            quoted = not quoted
        if not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            args.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        args.append(current.strip())
    return args


def _intrinsic(expression: str, data: Any, context: Dict[str, Any]) -> Any:
    match = re.fullmatch(r"(States\.[A-Za-z]+)\((.*)\)", expression.strip(), re.S)
    if not match:
        return get_path(data, expression, context)
    name, raw_args = match.groups()
    args = []
    for arg in _split_args(raw_args):
        if arg.startswith("'"):
            args.append(arg[1:-1].replace("\\'", "'"))
        elif arg.startswith("$"):
            args.append(get_path(data, arg, context))
        elif arg.startswith("States."):
            args.append(_intrinsic(arg, data, context))
        else:
            args.append(json.loads(arg))
    if name == "States.Format":
        template, values = args[0], iter(args[1:])
        return re.sub(r"\{\}", lambda _: _format_value(next(values)), template)
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.StringToJson":
        return json.loads(args[0])
    if name == "States.Array":
        return list(args)
    raise StatesError("States.Runtime", f"intrinsic {name} is not supported offline")


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def render_payload(template: Any, data: Any, context: Dict[str, Any]) -> Any:
    if isinstance(template, dict):
        rendered = {}
        for key, value in template.items():
            if key.endswith(".$"):
                rendered[key[:-2]] = _intrinsic(value, data, context)
            else:
                rendered[key] = render_payload(value, data, context)
        return rendered
    if isinstance(template, list):
        return [render_payload(item, data, context) for item in template]
    return template


# ---- Choice rules ------------------------------------------------------------------------------

_COMPARATORS: Dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_TYPES = {"String": str, "Numeric": (int, float), "Boolean": bool, "Timestamp": str}


def evaluate_rule(rule: Dict[str, Any], data: Any, context: Dict[str, Any]) -> bool:
    if "And" in rule:
        return all(evaluate_rule(sub, data, context) for sub in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(sub, data, context) for sub in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data, context)
    variable = rule["Variable"]
    try:
        value = get_path(data, variable, context)
        present = True
    except StatesError:
        value, present = None, False
    if "IsPresent" in rule:
        return present == rule["IsPresent"]
    if "IsNull" in rule:
        return present and (value is None) == rule["IsNull"]
    for type_name, python_type in _TYPES.items():
        if f"Is{type_name}" in rule:
            ok = present and isinstance(value, python_type) and not (
                type_name == "Numeric" and isinstance(value, bool))
            return ok == rule[f"Is{type_name}"]
    if not present:
        return False
    for key, expected in rule.items():
        for type_name, python_type in _TYPES.items():
            if not key.startswith(type_name):
                continue
            operator = key[len(type_name):]
            if operator.endswith("Path"):
                operator, expected = operator[:-4], get_path(data, expected, context)
            if operator == "Matches":
                pattern = "^" + re.escape(expected).replace(r"\*", ".*") + "$"
                return isinstance(value, str) and re.match(pattern, value) is not None
            if operator in _COMPARATORS:
                if not isinstance(value, python_type) or (type_name != "Boolean" and isinstance(value, bool)):
                    return False
                return _COMPARATORS[operator](value, expected)
    raise StatesError("States.Runtime", f"unsupported Choice rule {rule}")


# ---- the machine ---------------------------------------------------------------------------------

def _matches(error_equals: List[str], error: str) -> bool:
    return "States.ALL" in error_equals or error in error_equals or (
        "States.TaskFailed" in error_equals and error != "States.Timeout")


class StateMachine:
    """A parsed definition; `run(input)` executes it with `invoke(resource, payload)`."""

    def __init__(self, definition: Dict[str, Any], invoke: TaskInvoker,
                 sleep: Callable[[float], None] = time.sleep, max_wait_seconds: float = 0.0):
        self.definition = definition
        self.invoke = invoke
        self.sleep = sleep
        self.max_wait_seconds = max_wait_seconds

    def run(self, execution_input: Any, name: str = "local", state_machine_arn: str = LOCAL_MACHINE_ARN) -> Execution:
        """`$$.Execution.Id` is the execution's ARN: `state_machine_arn`'s, as AWS forms it."""
        execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        context = {"Execution": {"Id": execution_arn, "Name": name, "Input": execution_input,
                                 "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                   "StateMachine": {"Id": state_machine_arn, "Name": state_machine_arn.rsplit(":", 1)[-1]}}
        execution = Execution(status="RUNNING")
        return self._drive(execution, lambda: self._run_states(self.definition, execution_input, context,
                                                               execution, top_level=True))

    def resume(self, execution: Execution, outcome: Dict[str, Any]) -> Execution:
        """Continue a paused execution with a token's outcome: {"output": JSON text} (SendTaskSuccess)
        or {"error", "cause"} (SendTaskFailure); past the task's deadline, States.Timeout wins."""
        waiting = execution.waiting
        if execution.status != "RUNNING" or not waiting:
            raise StatesError("States.Runtime", "the execution is not waiting for a task token")
        execution.waiting = None
        name, data, context = waiting["state"], waiting["data"], waiting["context"]
        state = self.definition["States"][name]
        if waiting.get("deadline") is not None and time.time() > waiting["deadline"]:
            outcome = {"error": "States.Timeout", "cause": "the task token was not answered in time"}

        def proceed() -> Any:
            if "error" in outcome:
                error = StatesError(str(outcome["error"]), str(outcome.get("cause") or ""))
                execution.history.append({"state": name, "type": "TaskFailed", "error": error.error,
                                          "cause": error.cause})
                next_name, next_data = self._catch(name, state, data, error, execution)
            else:
                execution.history.append({"state": name, "type": "TaskSucceeded"})
                result = json.loads(outcome.get("output") or "null")
                next_data = self._output(state, data, result, context)
                if state.get("End"):
                    return next_data
                next_name = state["Next"]
            return self._run_states(self.definition, next_data, context, execution, top_level=True,
                                    start=next_name)

        return self._drive(execution, proceed)

    @staticmethod
    def _drive(execution: Execution, body: Callable[[], Any]) -> Execution:
        try:
            execution.output = body()
            execution.status = "SUCCEEDED"
        except _Paused as paused:
            execution.status, execution.waiting = "RUNNING", paused.waiting
        except StatesError as err:
            execution.status, execution.error, execution.cause = "FAILED", err.error, err.cause
        return execution

    def _catch(self, name: str, state: Dict[str, Any], data: Any, err: StatesError,
               execution: Execution) -> Any:
        """(next state, data) for a Catch that matches `err`; re-raises when none does."""
        handler = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], err.error)), None)
        if handler is None:
            raise err
        execution.history.append({"state": name, "type": "Caught", "error": err.error, "cause": err.cause})
        return handler["Next"], set_path(data, handler.get("ResultPath", "$"), {"Error": err.error, "Cause": err.cause})

    def _run_states(self, machine: Dict[str, Any], data: Any, context: Dict[str, Any],
                    execution: Execution, top_level: bool = False, start: Optional[str] = None) -> Any:
        states, name = machine["States"], start or machine["StartAt"]
        for _ in range(MAX_TRANSITIONS):
            state = states[name]
            context["State"] = {"Name": name, "EnteredTime": time.time()}
            execution.history.append({"state": name, "type": state["Type"]})
            kind = state["Type"]
            if kind == "Choice":
                target = next((rule["Next"] for rule in state["Choices"]
                               if evaluate_rule(rule, data, context)), state.get("Default"))
                if target is None:
                    raise StatesError("States.NoChoiceMatched", f"no choice matched in {name}")
                data = self._output(state, data, data, context, apply_result=False)
                name = target
                continue
            if kind == "Succeed":
                return self._output(state, data, data, context, apply_result=False)
            if kind == "Fail":
                raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
            if kind == "Task" and state["Resource"].endswith(WAIT_FOR_TASK_TOKEN):
                if not top_level:
                    raise StatesError("States.Runtime",
                                      f"{name}: a task token inside Map/Parallel is not supported offline")
                try:
                    self._submit_for_token(name, state, data, context, execution)
                except StatesError as err:
                    name, data = self._catch(name, state, data, err, execution)
                    continue
            try:
                data = self._execute(name, state, data, context, execution)
            except StatesError as err:
                name, data = self._catch(name, state, data, err, execution)
                continue
            if state.get("End"):
                return data
            name = state["Next"]
        raise StatesError("States.Runtime", f"more than {MAX_TRANSITIONS} transitions")

    def _submit_for_token(self, name: str, state: Dict[str, Any], data: Any, context: Dict[str, Any],
                          execution: Execution) -> None:
        """Call the task's resource with a fresh token in `$$.Task.Token`, then pause."""
        token = secrets.token_urlsafe(48)
        task_context = dict(context, Task={"Token": token})
        effective = get_path(data, state["InputPath"], task_context) if state.get("InputPath") else data
        parameters = render_payload(state.get("Parameters", {}), effective, task_context)
        timeout = state.get("TimeoutSeconds")
        if "TimeoutSecondsPath" in state:
            timeout = get_path(data, state["TimeoutSecondsPath"], context)
        self._with_retries(state, lambda: self.invoke(state["Resource"], parameters))
        execution.history.append({"type": "TaskScheduled", "name": name, "resource": state["Resource"],
                                  "parameters": parameters, "timeout_seconds": timeout})
        raise _Paused({"state": name, "data": data, "context": context, "token": token,
                       "resource": state["Resource"], "parameters": parameters,
                       "timeout_seconds": timeout,
                       "deadline": None if timeout is None else time.time() + float(timeout)})

    def _execute(self, name: str, state: Dict[str, Any], data: Any, context: Dict[str, Any],
                 execution: Execution) -> Any:
        effective = get_path(data, state["InputPath"], context) if state.get("InputPath") else data
        if state.get("InputPath", "$") is None:
            effective = {}
        if "Parameters" in state:
            effective = render_payload(state["Parameters"], effective, context)
        kind = state["Type"]
        if kind == "Pass":
            result = state.get("Result", effective)
        elif kind == "Wait":
            seconds = state.get("Seconds") or (get_path(data, state["SecondsPath"], context)
                                               if "SecondsPath" in state else 0)
            self.sleep(min(float(seconds), self.max_wait_seconds))
            return self._output(state, data, data, context, apply_result=False)
        elif kind == "Task":
            result = self._with_retries(state, lambda: self.invoke(state["Resource"], effective))
        elif kind == "Map":
            result = self._map(name, state, effective if "Parameters" in state else data, data, context, execution)
        elif kind == "Parallel":
            result = [self._run_states(branch, effective, dict(context), execution) for branch in state["Branches"]]
        else:
            raise StatesError("States.Runtime", f"state type {kind} ({name}) is not supported offline")
        return self._output(state, data, result, context)

    def _map(self, name: str, state: Dict[str, Any], items_from: Any, data: Any, context: Dict[str, Any],
             execution: Execution) -> List[Any]:
        """An inline Map: each item through the processor, at most MaxConcurrency at once (0: all)."""
        items = get_path(items_from, state.get("ItemsPath", "$"), context)
        if not isinstance(items, list):
            raise StatesError("States.Runtime", f"{name}: ItemsPath did not select an array")
        limit = state.get("MaxConcurrency", 0)
        if "MaxConcurrencyPath" in state:
            limit = get_path(data, state["MaxConcurrencyPath"], context)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise StatesError("States.Runtime", f"{name}: MaxConcurrency must be a non-negative integer, got {limit!r}")
        processor = state.get("ItemProcessor") or state["Iterator"]

        stopped = threading.Event()  # an uncaught failure: AWS stops the iterations not yet ended

        def iteration(index: int, item: Any) -> Any:
            if stopped.is_set():
                return None  # never started; the Map fails with the first failure's error
            item_context = dict(context, Map={"Item": {"Index": index, "Value": item}})
            item_input = render_payload(state["ItemSelector"], data, item_context) if "ItemSelector" in state else item
            try:
                return self._run_states(processor, item_input, item_context, execution)
            except BaseException:
                stopped.set()
                raise

        results: List[Any] = []
        if items:
            with ThreadPoolExecutor(max_workers=min(limit or len(items), len(items))) as pool:
                futures = [pool.submit(iteration, index, item) for index, item in enumerate(items)]
                results = [future.result() for future in futures]  # the first failed item's error, after all ended
        # as AWS's MapStateExited event: what each iteration returned, in item order
        execution.history.append({"type": "MapStateExited", "name": name, "iterations": results})
        return results

    def _with_retries(self, state: Dict[str, Any], call: Callable[[], Any]) -> Any:
        attempts: Dict[int, int] = {}
        while True:
            try:
                return call()
            except StatesError as err:
                for index, retrier in enumerate(state.get("Retry", [])):
                    if _matches(retrier["ErrorEquals"], err.error):
                        attempts[index] = attempts.get(index, 0) + 1
                        if attempts[index] > retrier.get("MaxAttempts", 3):
                            raise
                        delay = retrier.get("IntervalSeconds", 1) * (
                            retrier.get("BackoffRate", 2.0) ** (attempts[index] - 1))
                        self.sleep(min(delay, self.max_wait_seconds))
                        break
                else:
                    raise

    def _output(self, state: Dict[str, Any], data: Any, result: Any, context: Dict[str, Any],
                apply_result: bool = True) -> Any:
        if apply_result:
            if "ResultSelector" in state:
                result = render_payload(state["ResultSelector"], result, context)
            data = set_path(data, state.get("ResultPath", "$"), result)
        output_path = state.get("OutputPath", "$")
        if output_path is None:
            return {}
        return get_path(data, output_path, context)
