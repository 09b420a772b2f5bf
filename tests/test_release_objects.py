"""The publishing building blocks: comparison with what is published, races, tags, manifest, URLs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from test_release_support import BUCKET, RELAY, create_bucket, make_repo_root, sha256_b64, spy_puts, tags

from generators.build import build
from generators.products import get, products, registered
from generators.release.aws import ConflictError, dns_suffix, location_to_region, object_url
from generators.release.s3 import (
    PROVISIONING_TAG,
    Artifact,
    Outcome,
    ProductFiles,
    Publisher,
    State,
    git_source,
    manifest,
    parse_s3_location,
    platform_files,
    product_files,
    s3_template_filename,
)
from generators.settings import Settings, SettingsError

KEY = "releases/platform/1.2.0/sm-policies.yaml"


@pytest.fixture
def s3():
    with mock_aws():
        yield create_bucket(BUCKET)


def artifact(body: bytes = b"Resources: {}\n") -> Artifact:
    return Artifact("sm-policies.yaml", KEY, body, (PROVISIONING_TAG,))


def test_identical_object_uploaded_by_another_tool_is_recognised_by_its_bytes(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"Resources: {}\n")  # CRC32 checksum, no SHA-256, no tags
    publisher = Publisher(s3, BUCKET)
    assert publisher.published(artifact()).state is State.IDENTICAL
    result = publisher.publish(artifact())
    assert result.outcome is Outcome.TAGGED
    assert tags(s3, KEY) == dict([PROVISIONING_TAG])


def test_existing_tags_are_kept_when_ours_are_added(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"Resources: {}\n", Tagging="owner=platform")
    Publisher(s3, BUCKET).publish(artifact())
    assert tags(s3, KEY) == {"owner": "platform", "servicecatalog:provisioning": "true"}


def test_sha256_mismatch_is_a_conflict_without_downloading(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"other", ChecksumAlgorithm="SHA256")
    with pytest.raises(ConflictError, match=r"sm-policies.yaml is already published .* different bytes"):
        Publisher(s3, BUCKET).verify(artifact())


def test_race_with_identical_bytes_is_accepted(s3) -> None:
    publisher = Publisher(s3, BUCKET)
    known = publisher.published(artifact())
    assert known.state is State.ABSENT
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=artifact().body, ChecksumSHA256=artifact().checksum,
                  Tagging="servicecatalog%3Aprovisioning=true")  # another release wins the race
    result = publisher.publish(artifact(), known)
    assert result.outcome is Outcome.RACED


def test_race_with_different_bytes_is_a_conflict(s3) -> None:
    publisher = Publisher(s3, BUCKET)
    known = publisher.published(artifact())
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"someone else's template", ChecksumAlgorithm="SHA256")
    with pytest.raises(ConflictError, match="sm-policies.yaml"):
        publisher.publish(artifact(), known)
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"someone else's template"


def test_put_sends_the_sha256_s3_verifies(s3) -> None:
    Publisher(s3, BUCKET).publish(artifact())
    head = s3.head_object(Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256_b64(artifact().body) == artifact().checksum


def ingestion_files(body: bytes = b"zip") -> ProductFiles:
    product = get("s3-fs-ingestion")
    prefix = "releases/s3-fs-ingestion/1.2.0"
    return ProductFiles(product, (
        Artifact("seed-code-s3-fs-ingestion.zip", f"{prefix}/seed-code-s3-fs-ingestion.zip", body, (PROVISIONING_TAG,)),
        Artifact("project-s3-fs-ingestion.yaml", f"{prefix}/project-s3-fs-ingestion.yaml", b"Resources: {}\n",
                 (PROVISIONING_TAG,)),
    ))


def test_manifest_is_deterministic_and_identical_across_commits() -> None:
    settings = Settings("1.2.0", BUCKET)
    files, platform = [ingestion_files()], [artifact()]
    first = manifest(settings, files, platform, {"git_commit": "aaa", "git_dirty": False})
    again = manifest(settings, files, platform, {"git_commit": "aaa", "git_dirty": False})
    other_commit = manifest(settings, files, platform, {"git_commit": "bbb", "git_dirty": False})
    other_files = manifest(settings, [ingestion_files(b"changed")], platform, {"git_commit": "aaa", "git_dirty": False})
    other_platform = manifest(settings, files, [artifact(b"changed")], {"git_commit": "aaa", "git_dirty": False})
    assert first.body == again.body
    assert first.same_content(other_commit.body), "re-running from another commit is not a conflict"
    assert not first.same_content(other_files.body)
    assert not first.same_content(other_platform.body)
    assert first.key == "releases/platform/1.2.0/manifest.json"
    document = json.loads(first.body)
    assert document["platform"] == {"prefix": "releases/platform/1.2.0", "files": [
        {"name": "sm-policies.yaml", "key": KEY, "size": 14, "sha256": artifact().sha256,
         "content_type": "application/yaml"}]}
    (product,) = document["products"]
    assert (product["slug"], product["display_name"], product["prefix"], product["project_template"]) == (
        "s3-fs-ingestion", "S3 to Feature Store ingestion", "releases/s3-fs-ingestion/1.2.0",
        "releases/s3-fs-ingestion/1.2.0/project-s3-fs-ingestion.yaml")
    assert [f["sha256"] for f in product["files"]] == [a.sha256 for a in ingestion_files().artifacts]
    assert "time" not in first.body.decode()


def test_files_of_each_product_and_of_the_platform_come_from_the_build(tmp_path: Path) -> None:
    """Each product's files go under its own prefix, zips first (the template names them); a file the product
    declares but the build did not produce stops the release before any AWS call."""
    settings = Settings("1.2.0", BUCKET)
    with registered(RELAY):
        result = build(settings, tmp_path / "build", make_repo_root(tmp_path / "repo"))
        relay = product_files(settings, RELAY, result)
        assert [a.key for a in relay.artifacts] == [
            "releases/relay-echo/1.2.0/lambda-relay-echo.zip",
            "releases/relay-echo/1.2.0/seed-code-relay-echo.zip",
            "releases/relay-echo/1.2.0/project-relay-echo.yaml",
        ]
        assert relay.project_template.body == (tmp_path / "build" / "project-relay-echo.yaml").read_bytes()
        for product in products():
            assert {a.name for a in product_files(settings, product, result).artifacts} == set(product.files)
    assert [a.key for a in platform_files(settings, result)] == [
        "releases/platform/1.2.0/sm-policies.yaml", "releases/platform/1.2.0/sm-project-sc-portfolio.yaml"]
    (tmp_path / "build" / "lambda-relay-echo.zip").unlink()
    del result.archives["lambda-relay-echo.zip"]
    with pytest.raises(ValueError, match="did not produce lambda-relay-echo.zip for product relay-echo"):
        product_files(settings, RELAY, result)


def test_manifest_from_another_commit_is_kept(s3) -> None:
    settings = Settings("1.2.0", BUCKET)
    old = manifest(settings, [ingestion_files()], [artifact()], {"git_commit": "aaa", "git_dirty": False})
    new = manifest(settings, [ingestion_files()], [artifact()], {"git_commit": "bbb", "git_dirty": False})
    publisher = Publisher(s3, BUCKET)
    publisher.publish(old)
    result = publisher.publish(new)
    assert result.outcome is Outcome.IDENTICAL and "commit aaa" in result.note
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=old.key)["Body"].read())["source"]["git_commit"] == "aaa"


@pytest.mark.parametrize(
    ("region", "suffix"),
    [("eu-west-1", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn"), ("cn-northwest-1", "amazonaws.com.cn"),
     ("us-gov-west-1", "amazonaws.com"), ("us-iso-east-1", "c2s.ic.gov")],
)
def test_object_urls_follow_the_partition(region: str, suffix: str) -> None:
    assert dns_suffix(region) == suffix
    assert object_url("b-1", region, "p/1.2.0+b/t.yaml") == f"https://b-1.s3.{region}.{suffix}/p/1.2.0%2Bb/t.yaml"


def test_bucket_location_answers_map_to_regions() -> None:
    assert location_to_region(None) == "us-east-1"
    assert location_to_region("") == "us-east-1"
    assert location_to_region("EU") == "eu-west-1"
    assert location_to_region("ap-south-2") == "ap-south-2"


def test_s3_template_location_and_name() -> None:
    location = parse_s3_location("s3://studio-templates/projects/")
    assert (location.bucket, location.prefix, location.uri) == ("studio-templates", "projects",
                                                                "s3://studio-templates/projects/")
    assert parse_s3_location("s3://studio-templates").key("x.yaml") == "x.yaml"
    assert s3_template_filename("s3-fs-ingestion", "1.2.0") == "s3-fs-ingestion-1-2-0.yaml"
    assert s3_template_filename("s3-fs-ingestion", "2.0.0-rc.1+build.5") == "s3-fs-ingestion-2-0-0-rc-1-build-5.yaml"
    assert s3_template_filename("relay-echo", "1.2.0") == "relay-echo-1-2-0.yaml"
    for bad in ("https://b/p", "s3://${AWS::AccountId}-x/p", "s3://Bad_Bucket/p"):
        with pytest.raises(SettingsError):
            parse_s3_location(bad)


def test_concurrent_conditional_write_is_retried(s3) -> None:
    conflict = ClientError({"Error": {"Code": "ConditionalRequestConflict", "Message": "A conflicting operation"},
                            "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutObject")
    spy = spy_puts(s3, fail_on=1, error=conflict)
    sleeps: list[float] = []
    result = Publisher(s3, BUCKET, sleep=sleeps.append).publish(artifact())
    assert result.outcome is Outcome.UPLOADED and len(spy.calls) == 2 and sleeps == [1]


def test_manifest_source_names_the_commit_and_a_dirty_tree(tmp_path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    assert git_source(tmp_path) == {"git_commit": "unknown", "git_dirty": None}
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    commit = git("rev-parse", "HEAD").strip()
    assert git_source(tmp_path) == {"git_commit": commit, "git_dirty": False}
    (tmp_path / "a.txt").write_text("b")
    assert git_source(tmp_path) == {"git_commit": commit, "git_dirty": True}
