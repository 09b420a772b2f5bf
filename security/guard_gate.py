"""Gate on the AWS Control Tower proactive controls: cfn-guard with the Control Tower rule set.

``python -m security.guard_gate --build build --work DIR``: fetches the pinned PyPI wheel of
``cdklabs-cdk-validator-cfnguard`` (``pip download --no-deps``: installing it pulls the whole CDK), unpacks
the cfn-guard binary for this machine and the Control Tower rule files from the ``.jsii.tgz`` inside it into
DIR (default ``$CFN_GUARD_HOME``), selects the rules whose evaluated resource types occur in the built
templates, runs ``cfn-guard validate --structured --output-format json`` on every template and fails on:

- a failed rule on a resource that does not suppress it;
- a suppression (``Metadata.guard.SuppressedRules``, written by ``generators.common.suppress``) without a
  reason in ``Metadata.SuppressionReasons``, naming no Control Tower rule, or matching no failure (stale).

cfn-guard itself ignores ``Metadata.guard.SuppressedRules`` with these rule files (the aws-guard-rules-registry
rules filter on it in their own queries; the Control Tower rules do not): the gate applies the suppressions.
A suppressed rule is still enforced by an account that turns that control on as a CloudFormation hook, so
each reason must say why the product cannot comply. A suppression names the rule in upper case, e.g.
``S3_BUCKET_LOGGING_ENABLED_CHECK`` for ``s3_bucket_logging_enabled_check`` (CT.S3.PR.2).

Prints the counts (rules run, passed, failed, not applicable, suppressed) and each finding with its control.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "cdklabs-cdk-validator-cfnguard"
VERSION = "0.0.62"
WHEEL = f"cdklabs_cdk_validator_cfnguard-{VERSION}-py3-none-any.whl"
# sha256 of the wheel on PyPI (https://pypi.org/project/cdklabs-cdk-validator-cfnguard/0.0.62/#files)
WHEEL_SHA256 = "83c9c9a086de47637611f414ca90200db97e7b8cd3c4a69475b5f81034bd4b45"
JSII_TARBALL = f"cdklabs/cdk_validator_cfnguard/_jsii/cdk-validator-cfnguard@{VERSION}.jsii.tgz"
RULES_DIR = "package/rules/control-tower/cfn-guard"
METADATA_DIR = "package/rules/control-tower/metadata"
GUARD_VERSION_FILE = "package/guard-version.json"
READY_MARKER = ".ready"
HOME_ENV = "CFN_GUARD_HOME"

# cfn-guard validate exit codes: 0 every rule passed or was skipped, 19 at least one rule failed.
# Anything else (5: a rule file did not parse, 255: a data file did not parse, a path is missing) is an error.
EXIT_PASS, EXIT_FAIL = 0, 19

# The binaries the package ships, by (operating system, machine) as Python reports them.
_SYSTEMS = {"linux": "ubuntu", "darwin": "macos"}  # the package calls every Linux build "ubuntu"
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

_TOP_LEVEL_RULE = re.compile(r"^rule\s+([A-Za-z0-9_]+)\s+when\b", re.M)
_CONTROL_ID = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]")


class GuardError(RuntimeError):
    """cfn-guard could not be fetched, unpacked or run, or its output is not what the gate expects."""


@dataclass(frozen=True)
class GuardRule:
    """One Control Tower proactive control: its cfn-guard rule and the metadata file shipped with it."""

    name: str  # the rule's name in cfn-guard's output, e.g. s3_bucket_logging_enabled_check
    control_id: str  # CT.S3.PR.2
    title: str
    fix: str
    resource_types: frozenset[str]
    path: Path

    @property
    def suppression_id(self) -> str:
        """The name a template writes in ``Metadata.guard.SuppressedRules`` to suppress this rule."""
        return self.name.upper()


@dataclass(frozen=True)
class Kit:
    """The unpacked binary and rule files of one pinned package version."""

    root: Path
    binary: Path
    guard_version: str

    @property
    def rules_dir(self) -> Path:
        return self.root / RULES_DIR

    @property
    def metadata_dir(self) -> Path:
        return self.root / METADATA_DIR


# --------------------------------------------------------------------------------------------------------
# Fetching and unpacking


def binary_member(system: str | None = None, machine: str | None = None) -> str:
    """The tarball member holding the cfn-guard binary for this (or the given) platform."""
    system = (system or sys.platform).lower()
    machine = (machine or platform.machine()).lower()
    os_name = next((name for prefix, name in _SYSTEMS.items() if system.startswith(prefix)), None)
    arch = _MACHINES.get(machine)
    if os_name is None or arch is None:
        raise GuardError(
            f"{PACKAGE} {VERSION} ships cfn-guard for Linux and macOS on x86_64 and aarch64 only, "
            f"not for {system}/{machine}: run the security gates on one of those (CI runs them on Linux x86_64)"
        )
    return f"package/bin/{os_name}/{arch}/cfn-guard"


def kit_dir(work: Path) -> Path:
    return work / f"{PACKAGE}-{VERSION}"


def locate(work: Path) -> Kit:
    """The kit already unpacked in ``work``; a :class:`GuardError` saying how to prepare it otherwise."""
    root = kit_dir(work)
    marker = root / READY_MARKER
    binary = root / binary_member()
    if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != WHEEL_SHA256 or not binary.is_file():
        raise GuardError(
            f"cfn-guard ({PACKAGE} {VERSION}) is not prepared in {work}: "
            f"run `python -m security.guard_gate --prepare-only --work {work}` (needs PyPI access)"
        )
    version = json.loads((root / GUARD_VERSION_FILE).read_text(encoding="utf-8"))["version"]
    return Kit(root=root, binary=binary, guard_version=version)


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel, checked against its published sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / WHEEL
    if not wheel.is_file():
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", str(dest), f"{PACKAGE}=={VERSION}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed arguments
        if result.returncode != 0 or not wheel.is_file():
            raise GuardError(
                f"`pip download {PACKAGE}=={VERSION}` failed (exit {result.returncode}); the gate needs PyPI "
                f"access, or pass a downloaded wheel with --wheel.\n{result.stderr.strip()[-2000:]}"
            )
    check_wheel(wheel)
    return wheel


def check_wheel(wheel: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise GuardError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256} ({PACKAGE} {VERSION} on PyPI)")


def unpack(wheel: Path, work: Path) -> Kit:
    """Unpack the rule files and this machine's cfn-guard binary from the wheel's ``.jsii.tgz``."""
    check_wheel(wheel)
    wanted_binary = binary_member()
    with zipfile.ZipFile(wheel) as archive:
        try:
            tarball = archive.read(JSII_TARBALL)
        except KeyError:
            raise GuardError(f"{wheel.name} has no {JSII_TARBALL}: the package layout changed") from None
    root = kit_dir(work)
    work.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=work))
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name in (wanted_binary, GUARD_VERSION_FILE)
                or m.name.startswith((RULES_DIR + "/", METADATA_DIR + "/"))
            ]
            if wanted_binary not in {m.name for m in members}:
                raise GuardError(f"{PACKAGE} {VERSION} has no {wanted_binary}")
            unsafe = [m.name for m in members if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts]
            if unsafe:  # the checks tarfile's "data" filter makes, for Pythons before 3.11.4 that lack it
                raise GuardError(f"{JSII_TARBALL} holds unexpected members: {unsafe[:5]}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:
                tar.extractall(staging, members=members)  # noqa: S202 - members checked above
        binary = staging / wanted_binary
        binary.chmod(0o755)
        (staging / READY_MARKER).write_text(WHEEL_SHA256 + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return locate(work)


def prepare(work: Path, wheel: Path | None = None) -> Kit:
    """The kit in ``work``, downloading and unpacking it first when it is not there."""
    try:
        return locate(work)
    except GuardError:
        pass
    return unpack(wheel or download_wheel(work / "wheel"), work)


def check_runs(kit: Kit) -> str:
    """``cfn-guard --version``, or a :class:`GuardError` that says why the binary cannot run here."""
    try:
        result = subprocess.run(  # noqa: S603 - the binary unpacked from the hash-checked wheel
            [str(kit.binary), "--version"], capture_output=True, text=True, check=False
        )
    except OSError as error:  # exec format error, missing loader, no exec permission on the work dir
        raise GuardError(f"cannot run {kit.binary}: {error} (platform {sys.platform}/{platform.machine()})") from None
    if result.returncode != 0 or kit.guard_version not in result.stdout:
        raise GuardError(
            f"{kit.binary} --version exited {result.returncode} with {result.stdout.strip()!r} "
            f"{result.stderr.strip()!r}; expected cfn-guard {kit.guard_version}"
        )
    return result.stdout.strip()


# --------------------------------------------------------------------------------------------------------
# The rule set and what applies


def load_rules(kit: Kit) -> dict[str, GuardRule]:
    """Every Control Tower rule in the kit, by cfn-guard rule name, with its control id and resource types."""
    rules: dict[str, GuardRule] = {}
    for path in sorted(kit.rules_dir.glob("*/*.guard")):
        names = set(_TOP_LEVEL_RULE.findall(path.read_text(encoding="utf-8")))
        if len(names) != 1:
            raise GuardError(f"{path} declares rules {sorted(names)}; the gate expects one rule per control file")
        meta_path = kit.metadata_dir / path.parent.name / f"{path.stem}.metadata.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GuardError(f"{path.name} has no metadata file {meta_path}") from None
        (name,) = names
        if name in rules:
            raise GuardError(f"rule {name} is declared by {rules[name].path.name} and {path.name}")
        types = frozenset(meta.get("EvaluatedResourceTypes", ()))
        if not types:
            raise GuardError(f"{meta_path} lists no EvaluatedResourceTypes: cannot tell which templates it applies to")
        rules[name] = GuardRule(
            name=name,
            control_id=meta["Id"],
            title=meta.get("DisplayName", ""),
            fix=meta.get("RemediationMessage", ""),
            resource_types=types,
            path=path,
        )
    if not rules:
        raise GuardError(f"no rule files under {kit.rules_dir}")
    return rules


def resource_types(templates: Mapping[str, dict]) -> set[str]:
    return {resource["Type"] for template in templates.values() for resource in template.get("Resources", {}).values()}


def select_rules(rules: Mapping[str, GuardRule], types: Iterable[str]) -> list[GuardRule]:
    """The rules that evaluate at least one of the given resource types (the others can only skip)."""
    present = set(types)
    return sorted((rule for rule in rules.values() if rule.resource_types & present), key=lambda r: r.name)


# --------------------------------------------------------------------------------------------------------
# Running cfn-guard and reading its structured output


def run_guard(kit: Kit, rules: Sequence[GuardRule], data: Sequence[Path]) -> list[dict]:
    """``cfn-guard validate`` of every data file against the rules; its structured JSON report."""
    if not rules:
        raise GuardError("no Control Tower rule applies to the templates' resource types: nothing to run")
    command = [str(kit.binary), "validate"]
    for rule in rules:
        command += ["--rules", str(rule.path)]
    for path in data:
        command += ["--data", str(path)]
    command += ["--output-format", "json", "--show-summary", "none", "--structured"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - as above
    except OSError as error:
        raise GuardError(f"cannot run {kit.binary}: {error}") from None
    if result.returncode not in (EXIT_PASS, EXIT_FAIL):
        raise GuardError(
            f"cfn-guard exited {result.returncode} (not 0 = pass or 19 = failures): "
            f"{(result.stderr or result.stdout).strip()[-3000:]}"
        )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise GuardError(f"cfn-guard printed no JSON report ({error}): {result.stdout[:500]!r}") from None
    names = {str(path) for path in data}
    reported = {entry.get("name") for entry in report}
    if reported != names:
        raise GuardError(f"cfn-guard reported on {sorted(reported)}, expected {sorted(names)}")
    return report


def _paths(node: Any) -> Iterator[str]:
    """Every template path a check reports on: the ``path`` of each ``{path, value}`` it traversed to.

    The ``value`` next to a path is the template content found there (which may hold anything, even keys
    named ``path``), so the walk does not descend into it.
    """
    if isinstance(node, dict):
        if isinstance(node.get("path"), str) and "value" in node:
            yield node["path"]
            return
        for item in node.values():
            yield from _paths(item)
    elif isinstance(node, list):
        for item in node:
            yield from _paths(item)


def failing_resources(failure: dict) -> tuple[str, ...]:
    """The logical ids of the resources a not-compliant rule report points at ('' for the template itself)."""
    found = {path.split("/")[2] for path in _paths(failure) if path.startswith("/Resources/")}
    return tuple(sorted(found)) or ("",)


@dataclass(frozen=True)
class TemplateResult:
    """One data file's outcome: failed rules (with their resources), compliant rules, skipped rules."""

    path: str
    failed: Mapping[str, tuple[str, ...]]
    compliant: frozenset[str]
    not_applicable: frozenset[str]


def parse_report(report: Sequence[dict]) -> list[TemplateResult]:
    """cfn-guard's ``--structured`` JSON: one entry per data file.

    Each Control Tower file holds a template rule and a hook rule of the same name; on a template, the
    hook one is always "not applicable", so a rule name can be both failed (or compliant) and not
    applicable: failed wins over compliant, which wins over not applicable.
    """
    results = []
    for entry in report:
        failed: dict[str, set[str]] = {}
        for item in entry.get("not_compliant", []):
            rule = item.get("Rule")
            if not isinstance(rule, dict) or "name" not in rule:
                raise GuardError(f"unexpected not_compliant entry in cfn-guard's report: {json.dumps(item)[:300]}")
            failed.setdefault(rule["name"], set()).update(failing_resources(rule))
        compliant = set(entry.get("compliant", [])) - set(failed)
        skipped = set(entry.get("not_applicable", [])) - set(failed) - compliant
        results.append(
            TemplateResult(
                path=entry["name"],
                failed={name: tuple(sorted(resources)) for name, resources in failed.items()},
                compliant=frozenset(compliant),
                not_applicable=frozenset(skipped),
            )
        )
    return results


# --------------------------------------------------------------------------------------------------------
# Suppressions and the verdict


@dataclass(frozen=True)
class Finding:
    template: str
    resource: str  # logical id, '' when the rule failed on the template as a whole
    rule: str
    suppressed: bool


@dataclass
class Outcome:
    rules_total: int
    rules_run: list[str]
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # rule -> failed | suppressed | passed | not applicable

    def count(self, status: str) -> int:
        return sum(1 for value in self.status.values() if value == status)


def declared_suppressions(template: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """logical id -> {suppressed rule id -> its reason (None when missing)} for one template."""
    found: dict[str, dict[str, str | None]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        metadata = resource.get("Metadata") or {}
        suppressed = (metadata.get("guard") or {}).get("SuppressedRules") or []
        if isinstance(suppressed, str):
            suppressed = [suppressed]
        reasons = metadata.get("SuppressionReasons") or {}
        if suppressed:
            found[logical_id] = {str(rule): reasons.get(rule) for rule in suppressed}
    return found


def evaluate(
    results: Sequence[TemplateResult],
    templates: Mapping[str, Mapping[str, Any]],
    rules: Mapping[str, GuardRule],
    selected: Sequence[GuardRule],
    min_reason_words: int = 8,
) -> Outcome:
    """Apply the templates' suppressions to cfn-guard's results and list every problem.

    ``templates`` maps each data file path (as given to cfn-guard) to the parsed template.
    """
    outcome = Outcome(rules_total=len(rules), rules_run=[rule.name for rule in selected])
    by_suppression_id = {rule.suppression_id: rule for rule in rules.values()}
    used: set[tuple[str, str, str]] = set()
    declared = {path: declared_suppressions(template) for path, template in templates.items()}
    for path, suppressions in declared.items():
        for logical_id, reasons in suppressions.items():
            for rule_id, reason in reasons.items():
                where = f"{Path(path).name} {logical_id}"
                if rule_id not in by_suppression_id:
                    outcome.problems.append(
                        f"{where} suppresses {rule_id}, which is no Control Tower rule in {PACKAGE} {VERSION} "
                        "(write the cfn-guard rule name in upper case, e.g. S3_BUCKET_LOGGING_ENABLED_CHECK)"
                    )
                if not reason or len(str(reason).split()) < min_reason_words:
                    outcome.problems.append(
                        f"{where} suppresses {rule_id} without a reason in Metadata.SuppressionReasons "
                        f"(at least {min_reason_words} words saying why the control cannot apply)"
                    )
    for result in results:
        suppressions = declared.get(result.path, {})
        for rule_name, resources in sorted(result.failed.items()):
            rule_id = rule_name.upper()
            for resource in resources:
                suppressed = rule_id in suppressions.get(resource, {})
                if suppressed:
                    used.add((result.path, resource, rule_id))
                outcome.findings.append(Finding(result.path, resource, rule_name, suppressed))
    for path, suppressions in declared.items():
        for logical_id, reasons in suppressions.items():
            for rule_id in reasons:
                if rule_id in by_suppression_id and (path, logical_id, rule_id) not in used:
                    rule = by_suppression_id[rule_id]
                    outcome.problems.append(
                        f"stale suppression: {Path(path).name} {logical_id} suppresses {rule_id} ({rule.control_id}), "
                        "which no longer fails there: remove it from the generator"
                    )
    for finding in outcome.findings:
        if not finding.suppressed:
            rule = rules.get(finding.rule)
            control = f"{rule.control_id} " if rule else ""
            fix = f" -- {rule.fix}" if rule and rule.fix else ""
            where = finding.resource or "(template)"
            outcome.problems.append(f"FAILED {control}{finding.rule} on {where} in {Path(finding.template).name}{fix}")
    for name in outcome.rules_run:
        mine = [f for f in outcome.findings if f.rule == name]
        if any(not f.suppressed for f in mine):
            outcome.status[name] = "failed"
        elif mine:
            outcome.status[name] = "suppressed"
        elif any(name in result.compliant for result in results):
            outcome.status[name] = "passed"
        else:
            outcome.status[name] = "not applicable"
    unknown = sorted({name for result in results for name in result.failed} - set(outcome.rules_run))
    if unknown:
        outcome.problems.append(f"cfn-guard reported rules the gate did not select: {unknown}")
    return outcome


def summary(outcome: Outcome, rules: Mapping[str, GuardRule], guard_version: str, types: set[str]) -> str:
    findings = outcome.findings
    lines = [
        f"cfn-guard {guard_version} with the AWS Control Tower proactive controls of {PACKAGE} {VERSION}: "
        f"{len(outcome.rules_run)} of {outcome.rules_total} rules run (those evaluating the templates' "
        f"{len(types)} resource types)",
        f"rules: {outcome.count('passed')} passed, {outcome.count('failed')} failed, "
        f"{outcome.count('not applicable')} not applicable, {outcome.count('suppressed')} suppressed "
        f"(with a reason); findings: {sum(not f.suppressed for f in findings)} failed, "
        f"{sum(f.suppressed for f in findings)} suppressed",
    ]
    for name in outcome.rules_run:
        rule = rules[name]
        where = ", ".join(
            f"{Path(f.template).name}:{f.resource or '(template)'}{' (suppressed)' if f.suppressed else ''}"
            for f in findings
            if f.rule == name
        )
        lines.append(f"  {outcome.status[name]:<14} {rule.control_id:<20} {name}{': ' + where if where else ''}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# Command line


def load_build(build_dir: Path, names: Iterable[str]) -> dict[str, dict]:
    """The built templates by file path: every ``*.yaml`` in ``build_dir``, which must hold ``names``."""
    paths = sorted(build_dir.resolve().glob("*.yaml"))  # absolute: cfn-guard may report either form
    missing = sorted(set(names) - {path.stem for path in paths})
    if missing:
        raise GuardError(f"{build_dir} lacks {', '.join(f'{n}.yaml' for n in missing)}: run python -m generators build")
    return {str(path): yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths}


def gate(kit: Kit, build_dir: Path, required: Iterable[str] | None = None) -> tuple[Outcome, str]:
    """Run the Control Tower rules on every template in ``build_dir`` (which must hold ``required``, by
    default every template the generators build) and return the verdict with its printable summary."""
    from generators.build import template_names
    from generators.common import MIN_REASON_WORDS

    templates = load_build(build_dir, template_names() if required is None else required)
    rules = load_rules(kit)
    types = resource_types(templates)
    selected = select_rules(rules, types)
    results = parse_report(run_guard(kit, selected, [Path(p) for p in templates]))
    outcome = evaluate(results, templates, rules, selected, MIN_REASON_WORDS)
    return outcome, summary(outcome, rules, kit.guard_version, types)


def default_work() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path(tempfile.gettempdir()) / "cfn-guard")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory with the built templates")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help=f"where the binary and rules are unpacked (default: ${HOME_ENV}, else <tmp>/cfn-guard)",
    )
    parser.add_argument("--wheel", type=Path, help=f"use this downloaded {WHEEL} instead of pip download")
    parser.add_argument("--prepare-only", action="store_true", help="fetch and unpack cfn-guard, run nothing")
    parser.add_argument("--summary-json", type=Path, help="also write the counts and findings to this JSON file")
    args = parser.parse_args(argv)
    work = args.work or default_work()
    try:
        kit = prepare(work, args.wheel)
        version = check_runs(kit)
        if args.prepare_only:
            print(f"{version} and the Control Tower rules of {PACKAGE} {VERSION} are ready in {kit.root}")
            return 0
        outcome, text = gate(kit, args.build)
    except GuardError as error:
        print(f"guard gate: {error}", file=sys.stderr)
        return 2
    print(text)
    if args.summary_json:
        args.summary_json.write_text(
            json.dumps(
                {
                    "package": f"{PACKAGE}=={VERSION}",
                    "cfn_guard": kit.guard_version,
                    "rules_total": outcome.rules_total,
                    "rules_run": len(outcome.rules_run),
                    "counts": {s: outcome.count(s) for s in ("passed", "failed", "not applicable", "suppressed")},
                    "findings": [f.__dict__ for f in outcome.findings],
                    "problems": outcome.problems,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    for problem in outcome.problems:
        print(f"guard gate: {problem}", file=sys.stderr)
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
