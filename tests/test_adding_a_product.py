"""README "Adding a product", walked through: a throwaway product declared here, registered for the test only.

Nothing but its declaration (and its seed code folder) is written: the build packages it, cfn-lint passes
its template, the portfolio offers it, the launch role policy covers every resource it creates, the name
budgets hold, and once the test ends the registry is as before.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from troposphere import Output, Ref

from generators.blocks import buckets, seed_code_cicd, upload_trigger
from generators.blocks.project import PROJECT_PARAMETERS, ProjectTemplate
from generators.build import build, template_names
from generators.names import ProjectNames
from generators.parameters import ParameterTable
from generators.products import PortfolioEntry, Product, products, registered
from generators.settings import Settings
from security.launch_role import requirements
from security.policy_eval import allows
from security.scenarios import scenarios

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_PARAMETERS = ParameterTable.of(
    upload_trigger.DATA_LOCATION_PARAMETERS,
    upload_trigger.TRIGGER_PARAMETERS,
    seed_code_cicd.SOURCE_PARAMETERS,
    PROJECT_PARAMETERS,
)


def build_demo(settings: Settings, product: Product) -> ProjectTemplate:
    """A product composed only of the library's blocks: a watched prefix that runs a pipeline."""
    pt = ProjectTemplate.start(settings, product, DEMO_PARAMETERS, "S3 upload -> demo pipeline")
    bucket = buckets.artifact_bucket(pt, {upload_trigger.MANIFEST_PREFIX: buckets.TRANSIENT_DAYS})
    upload_trigger.upload_trigger(pt, bucket, description="Starts the demo pipeline for each uploaded file.",
                                  rule_description="Starts the demo pipeline for uploads under the prefix.")
    seed_code_cicd.seed_code_cicd(pt, bucket, build_description="Deploys the demo pipeline.", build_variables={})
    pt.template.add_output(Output("ArtifactBucketName", Value=Ref(bucket)))
    return pt


DEMO = Product(
    slug="demo-echo",
    display_name="Demo echo (test only)",
    description="A throwaway product that proves a new component is one declaration.",
    names=ProjectNames(short="demo", suffix="demo-echo"),
    build_template=build_demo,
    lambdas=upload_trigger.LAMBDAS,
    sample_parameters={
        "SageMakerProjectName": "Demo-Project",
        "SageMakerProjectId": "p-abcdefghijkl",
        "DataBucketName": "my-data-bucket",
        "DataSuffix": ".csv",
        "CodeConnectionArn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d",
        "RepositoryId": "my-org/demo",
    },
    portfolio=PortfolioEntry.named("DemoEcho"),
)


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    """The repository plus the demo's seed code folder (the real folders linked, not copied)."""
    root = tmp_path / "repo"
    (root / "seed-code").mkdir(parents=True)
    for folder in (REPO_ROOT / "seed-code").iterdir():
        (root / "seed-code" / folder.name).symlink_to(folder, target_is_directory=True)
    (root / "lambda_functions").symlink_to(REPO_ROOT / "lambda_functions", target_is_directory=True)
    seed = root / "seed-code" / "demo-echo"
    seed.mkdir()
    (seed / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands: ['echo deployed']\n")
    return root


def test_a_new_product_is_one_declaration(repo_root: Path, tmp_path: Path) -> None:
    before = {product.slug for product in products()}
    with registered(DEMO):
        assert "project-demo-echo" in template_names()
        result = build(Settings(), tmp_path / "build", repo_root)
        assert {"project-demo-echo.yaml", "seed-code-demo-echo.zip"} <= {path.name for path in result.files}

        cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the pinned cfn-lint of this environment
        lint = subprocess.run(  # as in tox -e build: I3042 (hard-coded partition) included
            [str(cfn_lint), "--include-checks", "I3042", "--", str(result.templates["project-demo-echo"])],
            capture_output=True, text=True, check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

        templates = {name: yaml.safe_load(path.read_text()) for name, path in result.templates.items()}
        portfolio = templates["sm-project-sc-portfolio"]["Resources"]
        assert portfolio["DemoEchoProduct"]["Properties"]["Name"] == "Demo echo (test only)"
        assert portfolio["DemoEchoProduct"]["Properties"]["Tags"] == [
            {"Key": "sagemaker:studio-visibility", "Value": "true"}]
        assert portfolio["DemoEchoLaunchConstraint"]["Properties"]["ProductId"] == {"Ref": "DemoEchoProduct"}
        assert portfolio["IngestionProduct"]["Properties"]["Name"] == "S3 to Feature Store ingestion"

        launch = [
            statement
            for scenario in scenarios("sm-policies", templates["sm-policies"])[:1]
            for logical_id, resource in sorted(scenario.resources.items())
            if logical_id.startswith("LaunchRolePolicy")
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        ]
        document = {"Version": "2012-10-17", "Statement": launch}
        missing = [
            f"{scenario.label} {need.logical_id}: {need.action} on {need.arn}"
            for scenario in scenarios("project-demo-echo", templates["project-demo-echo"])
            for need in requirements(scenario.resources)
            if not allows([document], need.action, need.arn, passed_to=need.passed_to, context=dict(need.context))
        ]
        assert not missing, missing
        demo_role = "arn:aws:iam::123456789012:role/sagemaker-demo/sagemaker-demo-p-abcdefghijkl-start-ingestion"
        assert allows([document], "iam:CreateRole", demo_role), "the new product's roles are covered"
    assert {product.slug for product in products()} == before
    assert "project-demo-echo" not in template_names()
