"""Every scanner suppression carries a written reason, emitted by one helper, and the README lists it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from troposphere.sqs import Queue

from generators.common import Suppression, suppress

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
CHECKOV_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def _suppressions(templates):
    for name, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            metadata = resource.get("Metadata", {})
            if metadata.get("checkov") or metadata.get("cfn-lint") or metadata.get("SuppressionReasons"):
                yield name, logical_id, metadata


def _security_section() -> str:
    match = re.search(r"^## Security\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, "README.md needs a '## Security' section"
    return match.group(1)


def test_a_suppression_without_a_reason_is_refused() -> None:
    for reason in ("", "   ", "wontfix", "accepted risk, see ticket"):
        with pytest.raises(ValueError, match="reason"):
            Suppression(reason=reason, checkov=("CKV_AWS_18",))


def test_a_suppression_names_real_check_ids() -> None:
    reason = "A reason that is long enough to explain why the finding is acceptable here."
    with pytest.raises(ValueError, match="at least one check"):
        Suppression(reason=reason)
    with pytest.raises(ValueError, match="checkov check id"):
        Suppression(reason=reason, checkov=("S3 logging",))
    with pytest.raises(ValueError, match="cfn-lint rule id"):
        Suppression(reason=reason, cfn_lint=("CKV_AWS_18",))


def test_suppress_writes_every_dialect_and_merges_repeated_calls() -> None:
    queue = Queue("Q")
    first = Suppression(reason="First reason, long enough to say why it is accepted here.", checkov=("CKV_AWS_27",))
    second = Suppression(
        reason="Second reason, long enough to say why it is accepted here.", checkov=("CKV_AWS_1",), cfn_lint=("W3005",)
    )
    suppress(queue, first)
    suppress(queue, second)
    metadata = queue.Metadata
    assert metadata["checkov"]["skip"] == [
        {"id": "CKV_AWS_1", "comment": second.reason},
        {"id": "CKV_AWS_27", "comment": first.reason},
    ]
    assert metadata["cfn-lint"] == {"config": {"ignore_checks": ["W3005"]}}
    assert metadata["SuppressionReasons"] == {
        "CKV_AWS_1": second.reason,
        "CKV_AWS_27": first.reason,
        "W3005": second.reason,
    }
    with pytest.raises(ValueError, match="already suppressed"):
        suppress(queue, first)


def test_every_checkov_skip_in_the_templates_has_a_reason(templates) -> None:
    found = list(_suppressions(templates))
    assert found, "expected the documented suppressions"
    for name, logical_id, metadata in found:
        reasons = metadata.get("SuppressionReasons", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            where = f"{name} {logical_id} {skip.get('id')}"
            assert CHECKOV_ID.match(skip["id"]), where
            comment = skip.get("comment", "")
            assert len(comment.split()) >= 8, f"{where}: the skip comment must say why"
            assert reasons.get(skip["id"]) == comment, f"{where}: skip and SuppressionReasons disagree"


def test_a_guard_suppression_needs_a_rule_name_and_is_written_with_its_reason() -> None:
    reason = "A reason that is long enough to explain why the finding is acceptable here."
    with pytest.raises(ValueError, match="cfn-guard rule name"):
        Suppression(reason=reason, guard=("CT.S3.PR.1",))
    queue = Queue("Q")
    suppress(queue, Suppression(reason=reason, guard=("SQS_DLQ_CHECK",)))
    assert queue.Metadata["guard"] == {"SuppressedRules": ["SQS_DLQ_CHECK"]}
    assert queue.Metadata["SuppressionReasons"] == {"SQS_DLQ_CHECK": reason}


def test_every_cfn_lint_ignore_in_the_templates_has_a_reason(templates) -> None:
    for name, logical_id, metadata in _suppressions(templates):
        reasons = metadata.get("SuppressionReasons", {})
        for check in metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
            assert len(reasons.get(check, "").split()) >= 8, f"{name} {logical_id} ignores {check} without a reason"


def test_every_reason_belongs_to_a_suppression(templates) -> None:
    for name, logical_id, metadata in _suppressions(templates):
        skipped = {s["id"] for s in metadata.get("checkov", {}).get("skip", [])}
        ignored = set(metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []))
        guarded = set(metadata.get("guard", {}).get("SuppressedRules", []))
        assert set(metadata.get("SuppressionReasons", {})) == skipped | ignored | guarded, f"{name} {logical_id}"


def test_readme_lists_every_suppression_with_its_reason(templates) -> None:
    section = _security_section()
    for name, logical_id, metadata in _suppressions(templates):
        for check, reason in metadata["SuppressionReasons"].items():
            rows = [line for line in section.splitlines() if f"`{check}`" in line and f"`{logical_id}`" in line]
            assert rows, f"README Security table misses {check} on {logical_id} ({name})"
            assert reason in rows[0], f"README reason for {check} on {logical_id} differs from the template's"
