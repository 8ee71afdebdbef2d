"""CloudFormation models that moto 5.2.5 lacks, backed by moto's own service backends.

Each module is written like a moto model module (a `CloudFormationModel` subclass per
resource type, `create/update/delete_from_cloudformation_json`, `get_cfn_attribute`), so it
could be offered upstream as is. moto finds models through
`CloudFormationModel.__subclasses__()`, so importing a module registers its types; a model
defined here for a type moto already knows (S3 bucket, IAM role, route table, peering)
wins because it is defined later, and delegates to moto's own model for everything moto does.

`register(endpoints)` is called by the moto server child before it serves
(`envsync_local.moto_server.main`).
"""

from __future__ import annotations

from typing import Any, Mapping

from envsync_local.cfn_models import endpoints as _endpoints


def register(endpoint_map: Mapping[str, Any]) -> None:
    """Load the models and remember where each account's cluster endpoint really is."""
    _endpoints.configure(endpoint_map)

    from moto.cloudformation import parsing

    from envsync_local.cfn_models import (  # noqa: F401 - importing defines the models
        cloudwatch,
        custom_resources,
        ec2,
        ec2_filtering,
        iam,
        kms,
        logs,
        rds,
        s3,
        secretsmanager,
        stack_engine,
        stepfunctions,
    )

    stack_engine.install()
    s3.install()
    secretsmanager.install()
    # moto caches the type -> model map on first use.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
