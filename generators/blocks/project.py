"""The SageMaker project contract, and the template a product builds with its grants.

SageMaker passes ``SageMakerProjectName`` and ``SageMakerProjectId`` to every project template (CreateProject
API reference); every resource is tagged with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from troposphere import Parameter, Ref, Tags, Template

from ..grants import Grant
from ..names import ProjectNames, check_budgets
from ..parameters import ParameterSpec, ParameterTable
from ..settings import PROJECT_ID_MAX, PROJECT_ID_PATTERN, PROJECT_NAME_MAX, PROJECT_NAME_PATTERN, Settings

if TYPE_CHECKING:
    from ..products import Product

PROJECT_GROUP = "SageMaker project (set by SageMaker)"
PROJECT_PARAMETERS = (
    ParameterSpec(
        "SageMakerProjectName",
        PROJECT_GROUP,
        "Project name",
        {
            "Type": "String",
            "MinLength": 1,
            "MaxLength": PROJECT_NAME_MAX,
            "AllowedPattern": PROJECT_NAME_PATTERN.strip("^$"),
            "Description": "Name of the project (set by SageMaker).",
        },
        readme="1–32 characters, SageMaker's own pattern `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}` (\"2024-ingest\" is valid)",
        readme_default="set by SageMaker",
    ),
    ParameterSpec(
        "SageMakerProjectId",
        PROJECT_GROUP,
        "Project id",
        {
            "Type": "String",
            "MinLength": 1,
            "MaxLength": PROJECT_ID_MAX,
            "AllowedPattern": PROJECT_ID_PATTERN.strip("^$"),
            "Description": "Service-generated id of the project (set by SageMaker).",
        },
        readme="lowercase id such as `p-abcdefghijkl`; names buckets, roles and the pipeline",
        readme_default="set by SageMaker",
    ),
)


@dataclass
class ProjectTemplate:
    """A project template under construction: the troposphere template, its parameters, and the grants its
    blocks declared for each role (merged by ``sm-policies`` across products)."""

    settings: Settings
    product: Product
    template: Template
    parameters: dict[str, Parameter]
    table: ParameterTable
    launch: list[Grant] = field(default_factory=list)  # the Service Catalog launch role (CloudFormation)
    project_roles: list[Grant] = field(default_factory=list)  # CodeBuild and execution roles
    execution: list[Grant] = field(default_factory=list)  # the SageMaker execution role only
    studio_user: list[Grant] = field(default_factory=list)  # the Studio user (clean-up)

    @classmethod
    def start(cls, settings: Settings, product: Product, table: ParameterTable, description: str) -> ProjectTemplate:
        check_budgets(product.names)
        template = Template(Description=f"SageMaker project: {description} ({product.slug} {settings.version})")
        parameters = table.add_to(template)
        template.set_metadata(table.interface())
        return cls(settings, product, template, parameters, table)

    @property
    def names(self) -> ProjectNames:
        return self.product.names

    def ref(self, name: str) -> Ref:
        return Ref(self.parameters[name])

    def tags(self) -> Tags:
        return Tags({"sagemaker:project-name": self.ref("SageMakerProjectName"),
                     "sagemaker:project-id": self.ref("SageMakerProjectId")})

    def add_rule(self, name: str, when: Mapping[str, Any], assertions: list[tuple[dict[str, Any], str]]) -> None:
        """A template Rule: ``assertions`` are (assert, description) pairs checked when ``when`` holds."""
        self.template.add_rule(
            name,
            {
                "RuleCondition": when,
                "Assertions": [{"Assert": check, "AssertDescription": text} for check, text in assertions],
            },
        )
