"""What every model here that stands in for one of moto's shares: it names moto's model, and
answers moto's registry questions (type, name property, attributes) as that model does."""

from __future__ import annotations

from typing import Any, ClassVar


class StandsInFor:
    """Mixed in before `CloudFormationModel` (moto registers its direct subclasses only):
    `moto_model` is the moto class whose resource type, name property and attributes it keeps."""

    moto_model: ClassVar[Any]

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.moto_model.cloudformation_name_type()

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.moto_model.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return cls.moto_model.has_cfn_attr(attr)

    def is_created(self) -> bool:
        return True
