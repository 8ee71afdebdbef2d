"""A state machine whose definition comes from an object with DefinitionSubstitutions."""

from __future__ import annotations

import json

import boto3

DEFINITION = {"StartAt": "Migrate", "States": {"Migrate": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "${MigrateFunctionArn}", "Payload.$": "$"}, "End": True}}}


def template(function_arn: str) -> str:
    return json.dumps({"Resources": {"Machine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": "envsync-test-sync",
            "RoleArn": "arn:aws:iam::123456789012:role/sfn",
            "Definition": DEFINITION,
            "DefinitionSubstitutions": {"MigrateFunctionArn": function_arn},
        }}}, "Outputs": {"Arn": {"Value": {"Ref": "Machine"}}}})


def test_definition_substitutions_are_applied_on_create_and_update(aws_env):
    cloudformation, stepfunctions = boto3.client("cloudformation"), boto3.client("stepfunctions")
    cloudformation.create_stack(StackName="machine", TemplateBody=template("arn:aws:lambda:us-east-1:1:function:a"))
    stack = cloudformation.describe_stacks(StackName="machine")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    arn = stack["Outputs"][0]["OutputValue"]
    stored = json.loads(stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"])
    assert stored["States"]["Migrate"]["Parameters"]["FunctionName"] == "arn:aws:lambda:us-east-1:1:function:a"

    cloudformation.update_stack(StackName="machine", TemplateBody=template("arn:aws:lambda:us-east-1:1:function:b"))
    stored = json.loads(stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"])
    assert stored["States"]["Migrate"]["Parameters"]["FunctionName"] == "arn:aws:lambda:us-east-1:1:function:b"
    cloudformation.delete_stack(StackName="machine")
    assert stepfunctions.list_state_machines()["stateMachines"] == []
