"""sm-project-sc-portfolio: the Service Catalog portfolio and the products Studio users see.

One product per registered product (:mod:`generators.products`), each pointing at its published project
template of this version; the launch constraints name the launch role by name (``LocalRoleName``), so no
role name is ever cut out of an ARN.
"""

from __future__ import annotations

from troposphere import Equals, GetAtt, Not, Output, Parameter, Ref, Tags, Template
from troposphere import servicecatalog as sc

from .common import arn, interface
from .policies import LAUNCH_ROLE
from .products import Product, products
from .settings import PolicyNames, Settings


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
    for product in products():
        catalog_product(t, settings, product, portfolio=portfolio, provider=provider, launch_role=launch_role)
    t.add_output(
        [
            Output("PortfolioId", Value=Ref(portfolio)),
            Output("ProductVersion", Value=settings.version),
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


def catalog_product(t: Template, settings: Settings, product: Product, *, portfolio: sc.Portfolio,
                    provider: Parameter, launch_role: Parameter) -> sc.CloudFormationProduct:
    """The product (Studio-visible, first version: this release's template), in the portfolio, launched with
    the launch role; its id, versions and template URL as outputs."""
    ids = product.portfolio
    catalog = t.add_resource(
        sc.CloudFormationProduct(
            ids.product_id,
            Name=product.display_name,
            Owner=Ref(provider),
            Distributor=Ref(provider),
            Description=product.description,
            SupportDescription=f"Product {product.slug}, template {product.template_name}",
            ProvisioningArtifactParameters=[
                sc.ProvisioningArtifactProperties(
                    Name=settings.version,
                    Description=f"{product.slug} {settings.version}",
                    Info=sc.Info(LoadTemplateFromURL=product.template_url(settings)),
                )
            ],
            Tags=Tags({"sagemaker:studio-visibility": "true"}),
        )
    )
    association = t.add_resource(
        sc.PortfolioProductAssociation(ids.association_id, PortfolioId=Ref(portfolio), ProductId=Ref(catalog))
    )
    t.add_resource(
        sc.LaunchRoleConstraint(
            ids.constraint_id,
            DependsOn=[association],
            PortfolioId=Ref(portfolio),
            ProductId=Ref(catalog),
            LocalRoleName=Ref(launch_role),
            Description="Projects are created with the launch role's permissions",
        )
    )
    prefix = ids.output_prefix
    t.add_output(
        [
            Output(f"{prefix}ProductId", Value=Ref(catalog)),
            Output(f"{prefix}ProvisioningArtifactIds", Value=GetAtt(catalog, "ProvisioningArtifactIds")),
            Output(f"{prefix}ProductTemplateUrl", Value=product.template_url(settings)),
        ]
    )
    return catalog
