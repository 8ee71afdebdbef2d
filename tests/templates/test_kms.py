"""The KMS stack: one customer managed key per env, used by AWS services only via kms:ViaService."""

from __future__ import annotations

import pytest

from tests.chain import chain

ENVS = chain()  # config/config.yaml envs:, upstream first
SERVICES = {"rds", "ssm", "secretsmanager", "s3", "sns", "lambda", "states"}
DATA_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"}


@pytest.mark.parametrize("env", ENVS)
def test_key_rotates_and_has_the_env_alias(env, rendered_templates):
    resources = rendered_templates[f"{env}/kms"]["Resources"]
    assert resources["EnvKey"]["Properties"]["EnableKeyRotation"] is True
    assert resources["EnvKeyAlias"]["Properties"]["AliasName"] == {"Fn::Sub": "alias/envsync/${Env}"}
    assert "KeyArn" in rendered_templates[f"{env}/kms"]["Outputs"]


@pytest.mark.parametrize("env", ENVS)
def test_key_policy_limits_data_use_to_the_listed_services(env, rendered_templates):
    key = rendered_templates[f"{env}/kms"]["Resources"]["EnvKey"]
    statements = []
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if "Fn::If" in statement:  # prod-only statements
            statement = statement["Fn::If"][1]
        statements.append(statement)
    by_sid = {s["Sid"]: s for s in statements}
    for sid, statement in by_sid.items():
        actions = set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if sid == "UseThroughEnvsyncServices":
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            services = {value["Fn::Sub"].split(".")[0] for value in via}
            assert services == SERVICES
            assert "kms:CreateGrant" not in actions  # a grant would escape kms:ViaService
        elif sid == "ServicesCreateGrants":
            assert actions == {"kms:CreateGrant"}
            assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        elif sid == "CloudWatchLogsEncryptsLogGroups":
            assert statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
            assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["ArnLike"]
        elif sid == "CloudWatchAlarmsPublishToTopic":
            assert actions == {"kms:Decrypt", "kms:GenerateDataKey*"}
        elif sid == "ProdKeyOnlyByBreakGlass":  # every principal but the break-glass role
            assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
            assert actions == {"kms:DisableKey", "kms:DisableKeyRotation", "kms:ScheduleKeyDeletion",
                               "kms:PutKeyPolicy"}
            assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Ref": "BreakGlassRoleArn"}}}
        elif sid == "DeployerReadsKey":
            assert not actions & DATA_ACTIONS and not [a for a in actions if a.startswith(("kms:Create", "kms:Put"))]
        else:
            assert sid == "AdministerKey"
            assert "kms:*" not in actions and not actions & DATA_ACTIONS
            # No wildcard create/put and no grants: a grant would bypass kms:ViaService.
            assert not actions & {"kms:Create*", "kms:Put*", "kms:CreateGrant", "kms:*"}


@pytest.mark.launched
def test_each_env_gets_its_own_key_in_its_own_account(launched):
    keys = {env: launched.outputs(env, "kms")["KeyArn"] for env in ENVS}
    assert len(set(keys.values())) == 3
    for env, arn in keys.items():
        assert arn.split(":")[4] == launched.envs[env].account_id
        kms = launched.client(env, "kms")
        metadata = kms.describe_key(KeyId=arn)["KeyMetadata"]
        assert metadata["KeyManager"] == "CUSTOMER" and metadata["Enabled"]
        assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
        aliases = {a["AliasName"] for a in kms.list_aliases(KeyId=arn)["Aliases"]}
        assert f"alias/envsync/{env}" in aliases
