"""sm-project-sc-portfolio: the Service Catalog portfolio and product Studio users see.

The product points at the published project template of this version; the launch constraint names the
launch role by name (``LocalRoleName``), so no role name is ever cut out of an ARN.
"""

from __future__ import annotations

from troposphere import Equals, GetAtt, Not, Output, Parameter, Ref, Sub, Tags, Template
from troposphere import servicecatalog as sc

from .common import arn, interface
from .policies import LAUNCH_ROLE
from .settings import PRODUCT, PROJECT_TEMPLATE, PolicyNames, Settings

PRODUCT_NAME = "S3 to Feature Store ingestion"


def template_url(settings: Settings) -> Sub:
    """HTTPS URL of the published project template (the bucket is in the stack's region)."""
    key = settings.key(f"{PROJECT_TEMPLATE}.yaml")
    return Sub(f"https://{settings.artifacts_bucket}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{key}")


def build(settings: Settings) -> Template:
    policies = PolicyNames()
    t = Template(Description=f"Service Catalog portfolio and product for SageMaker projects ({settings.version})")
    principal = t.add_parameter(
        Parameter(
            "PrincipalArn",
            Type="String",
            AllowedPattern="arn:aws[a-z-]*:iam::[0-9]{12}:role/.+",
            Description="ARN of the Studio execution role (or other IAM role) allowed to create projects.",
        )
    )
    extra_principal = t.add_parameter(
        Parameter(
            "AdditionalPrincipalArn",
            Type="String",
            Default="",
            AllowedPattern="(arn:aws[a-z-]*:iam::[0-9]{12}:.+)?",
            Description="Optional second IAM principal (role, user or group ARN) allowed to create projects.",
        )
    )
    launch_role = t.add_parameter(
        Parameter(
            "LaunchRoleName",
            Type="String",
            Default=LAUNCH_ROLE,
            Description="Name (not ARN) of the role Service Catalog launches the product with.",
        )
    )
    provider = t.add_parameter(
        Parameter(
            "PortfolioProvider",
            Type="String",
            Default="Platform team",
            MinLength=1,
            MaxLength=50,
            Description="Who provides the portfolio (shown in Service Catalog).",
        )
    )
    t.set_metadata(
        interface(
            [("Access", [principal, extra_principal, launch_role]), ("Portfolio", [provider])],
            {
                "PrincipalArn": "Studio execution role ARN",
                "AdditionalPrincipalArn": "Additional principal ARN",
                "LaunchRoleName": "Launch role name",
                "PortfolioProvider": "Provider name",
            },
        )
    )
    t.add_condition("HasAdditionalPrincipal", Not(Equals(Ref(extra_principal), "")))

    portfolio = t.add_resource(
        sc.Portfolio(
            "Portfolio",
            DisplayName="SageMaker reusable components",
            ProviderName=Ref(provider),
            Description="Governed SageMaker project templates",
        )
    )
    product = t.add_resource(
        sc.CloudFormationProduct(
            "IngestionProduct",
            Name=PRODUCT_NAME,
            Owner=Ref(provider),
            Distributor=Ref(provider),
            Description="Watch an S3 prefix, transform each new file and ingest it into a SageMaker feature group.",
            SupportDescription=f"Product {PRODUCT}, template {PROJECT_TEMPLATE}",
            ProvisioningArtifactParameters=[
                sc.ProvisioningArtifactProperties(
                    Name=settings.version,
                    Description=f"{PRODUCT} {settings.version}",
                    Info=sc.Info(LoadTemplateFromURL=template_url(settings)),
                )
            ],
            Tags=Tags({"sagemaker:studio-visibility": "true"}),
        )
    )
    association = t.add_resource(
        sc.PortfolioProductAssociation(
            "ProductAssociation",
            PortfolioId=Ref(portfolio),
            ProductId=Ref(product),
        )
    )
    t.add_resource(
        sc.PortfolioPrincipalAssociation(
            "PrincipalAssociation",
            PortfolioId=Ref(portfolio),
            PrincipalARN=Ref(principal),
            PrincipalType="IAM",
        )
    )
    t.add_resource(
        sc.PortfolioPrincipalAssociation(
            "AdditionalPrincipalAssociation",
            Condition="HasAdditionalPrincipal",
            PortfolioId=Ref(portfolio),
            PrincipalARN=Ref(extra_principal),
            PrincipalType="IAM",
        )
    )
    t.add_resource(
        sc.LaunchRoleConstraint(
            "LaunchConstraint",
            DependsOn=[association],
            PortfolioId=Ref(portfolio),
            ProductId=Ref(product),
            LocalRoleName=Ref(launch_role),
            Description="Projects are created with the launch role's permissions",
        )
    )
    t.add_output(
        [
            Output("PortfolioId", Value=Ref(portfolio)),
            Output("ProductId", Value=Ref(product)),
            Output("ProductVersion", Value=settings.version),
            Output("ProvisioningArtifactIds", Value=GetAtt(product, "ProvisioningArtifactIds")),
            Output("ProductTemplateUrl", Value=template_url(settings)),
            Output(
                "LaunchRolePolicyArn",
                Value=arn("iam", policies.arn_resource("launch")),
                Description="Policy sm-policies attaches to the launch role",
            ),
            Output(
                "ProjectRolesPolicyArn",
                Value=arn("iam", policies.arn_resource("project-roles")),
                Description="Policy sm-policies attaches to the project's build and execution roles",
            ),
        ]
    )
    return t
