"""A small CloudFormation evaluator for the rendered templates: what one env really gets.

Given a template (as cfn-lint decodes it: short-form tags become `Fn::` dicts) and the
parameter values of one env, it evaluates Conditions, drops resources and outputs whose
Condition is false, resolves `Fn::If`, `Ref` to parameters and pseudo parameters,
`AWS::NoValue`, and `Fn::Sub`/`Fn::Join`/`Fn::Select`/`Fn::Split` where every piece is known. Anything
that needs a deployed resource (`Fn::GetAtt`, `Ref` to a resource) stays as it is, so tests
assert on wiring (`{"Ref": "KmsKeyArn"}` became the kms stack's output) and on values.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional

NO_VALUE = object()
PSEUDO = {"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class EvaluationError(ValueError):
    pass


class Evaluated:
    """One template evaluated for one env's parameters."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any], account_id: str):
        self.template = template
        self.account_id = account_id
        declared = template.get("Parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise EvaluationError(f"parameters not declared by the template: {sorted(unknown)}")
        self.parameters: Dict[str, Any] = {}
        for name, spec in declared.items():
            if name in parameters:
                value = parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise EvaluationError(f"parameter {name} has no value and no default")
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = [item.strip() for item in str(value).split(",")] if isinstance(value, str) else value
            if spec.get("Type") == "Number":
                value = float(value) if "." in str(value) else int(value)
            self.parameters[name] = value
        self.conditions: Dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self._condition(name)
        self.resources: Dict[str, Dict[str, Any]] = {}
        for name, resource in template.get("Resources", {}).items():
            if "Condition" in resource and not self._condition(resource["Condition"]):
                continue
            evaluated = {key: self.resolve(value) for key, value in resource.items() if key != "Condition"}
            self.resources[name] = evaluated
        self.outputs: Dict[str, Any] = {}
        for name, output in template.get("Outputs", {}).items():
            if "Condition" in output and not self._condition(output["Condition"]):
                continue
            self.outputs[name] = self.resolve(output["Value"])

    # -- conditions ---------------------------------------------------------------------------
    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            expression = self.template.get("Conditions", {}).get(name)
            if expression is None:
                raise EvaluationError(f"unknown condition {name}")
            self.conditions[name] = self._truth(expression)
        return self.conditions[name]

    def _truth(self, expression: Any) -> bool:
        if not isinstance(expression, Mapping) or len(expression) != 1:
            raise EvaluationError(f"not a condition expression: {expression!r}")
        (function, argument), = expression.items()
        if function == "Condition":
            return self._condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        raise EvaluationError(f"unsupported condition function {function}")

    # -- values ------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self._condition(condition) else when_false)
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument[0], self.resolve(argument[1])
                if isinstance(items, list) and all(isinstance(item, (str, int)) for item in items):
                    return separator.join(str(item) for item in items)
                return {"Fn::Join": [separator, items]}
            if key == "Fn::Select":
                index, items = self.resolve(argument[0]), self.resolve(argument[1])
                if isinstance(items, list) and isinstance(index, (int, str)):
                    return items[int(index)]
                return {"Fn::Select": [index, items]}
            if key == "Fn::Split":
                separator, text = argument[0], self.resolve(argument[1])
                return text.split(separator) if isinstance(text, str) else {"Fn::Split": [separator, text]}
        result = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not NO_VALUE:
                result[key] = resolved
        return result

    def _known(self, name: str) -> Optional[Any]:
        if name in self.parameters:
            return self.parameters[name]
        if name == "AWS::AccountId":
            return self.account_id
        if name in PSEUDO:
            return PSEUDO[name]
        return None

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        known = self._known(name)
        return {"Ref": name} if known is None else known

    def _sub(self, argument: Any) -> Any:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables and isinstance(variables[name], (str, int)):
                return str(variables[name])
            known = self._known(name)
            return str(known) if isinstance(known, (str, int)) else match.group(0)

        return SUB_VARIABLE.sub(replace, text)

    # -- queries -------------------------------------------------------------------------------------
    def of_type(self, resource_type: str) -> Dict[str, Dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def props(self, name: str) -> Dict[str, Any]:
        return self.resources[name]["Properties"]


def statements(policy_document: Mapping[str, Any]) -> List[Dict[str, Any]]:
    found = policy_document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, list) else [value]
