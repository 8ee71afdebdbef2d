"""Known IAM risk patterns: two established analysers over every policy the stacks render.

- `cloudsplaining` (identity policies): privilege escalation, data exfiltration, resource
  exposure, credentials exposure, service wildcards, infrastructure modification;
- `parliament` (every policy, identity and resource): malformed statements, unknown actions,
  resources that match none of an action's resource types, risky conditions.

A finding is either fixed in the template or listed, with its reason, in
`analyser_findings.yaml` (reviewed like code). A finding that is not listed fails the proof;
so does a listed one no analyser reports any more (the list stays true).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Tuple

import yaml

from envsync_tools.proof.project import EnvStacks
from envsync_tools.proof.static import Namer, Stack

LIST_PATH = Path(__file__).with_name("analyser_findings.yaml")
CLOUDSPLAINING_CHECKS = ("PrivilegeEscalation", "DataExfiltration", "ResourceExposure", "CredentialsExposure",
                         "ServiceWildcard", "InfrastructureModification")
# Where each resource type keeps its policy documents, and whose they are.
RESOURCE_POLICIES = {
    "AWS::KMS::Key": "KeyPolicy", "AWS::EC2::VPCEndpoint": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument", "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
}


class BadListEntry(ValueError):
    """An entry of analyser_findings.yaml that cannot be matched: said with its place."""


@dataclass(frozen=True)
class RenderedPolicy:
    env: str
    label: str  # <stack>/<LogicalId>[/<PolicyName>|/trust], the same in every env
    kind: str  # identity | resource
    document: Mapping[str, Any]


@dataclass(frozen=True)
class AnalyserFinding:
    tool: str
    check: str
    policy: str  # the policy's label
    detail: str
    envs: Tuple[str, ...]

    @property
    def key(self) -> Tuple[str, str, str, str]:
        return self.tool, self.check, self.policy, self.detail

    def __str__(self) -> str:
        return f"{self.tool} {self.check} in {self.policy} ({', '.join(self.envs)}): {self.detail}"


def _strings_only(value: Any) -> Any:
    """A policy as IAM would store it: an intrinsic the proof cannot resolve (a deploy-time id)
    stands as a placeholder ARN, so the analysers read the statement around it."""
    if isinstance(value, list):
        return [_strings_only(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref")):
            return "arn:aws:unresolved:us-east-1:000000000000:deploy-time-value"
        return {key: _strings_only(item) for key, item in value.items()}
    return value


def rendered_policies(env_stacks: EnvStacks) -> List[RenderedPolicy]:
    """Every IAM policy document of every stack of every env, with the values that env gets."""
    found = []
    for name in sorted(env_stacks.rendered):
        env, short = name.split("/")
        evaluated = env_stacks.evaluated(name)
        stack = Stack(env_stacks.stacks[name].external_name, evaluated.resources)
        namer = Namer(stack, env_stacks.account(env))
        for logical_id, raw in stack.resources.items():
            resource = namer.concrete(raw)
            kind, properties = resource["Type"], resource.get("Properties") or {}
            label = f"{short}/{logical_id}"
            documents: List[Tuple[str, str, Any]] = []
            if kind == "AWS::IAM::Role":
                documents.append((f"{label}/trust", "resource", properties.get("AssumeRolePolicyDocument")))
                documents += [(f"{label}/{policy.get('PolicyName')}", "identity", policy.get("PolicyDocument"))
                              for policy in properties.get("Policies", [])]
            elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                documents.append((label, "identity", properties.get("PolicyDocument")))
            elif kind in RESOURCE_POLICIES:
                documents.append((label, "resource", properties.get(RESOURCE_POLICIES[kind])))
            found += [RenderedPolicy(env, where, whose, _strings_only(document))
                      for where, whose, document in documents if document]
    return found


def cloudsplaining_findings(policy: RenderedPolicy) -> List[Tuple[str, str]]:
    from cloudsplaining.command.scan_policy_file import scan_policy

    results = scan_policy(dict(policy.document))
    found = []
    for check in CLOUDSPLAINING_CHECKS:
        for item in (results.get(check) or {}).get("findings", []):
            detail = f"{item.get('type')}: {', '.join(sorted(item.get('actions', [])))}" \
                if isinstance(item, dict) else str(item)
            found.append((check, detail))
    return found


def parliament_findings(policy: RenderedPolicy) -> List[Tuple[str, str]]:
    from parliament import analyze_policy_string

    analysed = analyze_policy_string(json.dumps(policy.document), include_community_auditors=False)
    found = []
    for finding in analysed.findings:
        detail = finding.detail if isinstance(finding.detail, str) else json.dumps(finding.detail, sort_keys=True)
        found.append((finding.issue, detail))
    return found


def analyse(policies: Iterable[RenderedPolicy]) -> List[AnalyserFinding]:
    """Both analysers over every policy; one finding per (tool, check, policy, detail), with the
    envs it appears in."""
    envs_of: Dict[Tuple[str, str, str, str], List[str]] = {}
    for policy in policies:
        results = [("parliament", check, detail) for check, detail in parliament_findings(policy)]
        if policy.kind == "identity":
            results += [("cloudsplaining", check, detail) for check, detail in cloudsplaining_findings(policy)]
        for tool, check, detail in results:
            where = envs_of.setdefault((tool, check, policy.label, detail), [])
            if policy.env not in where:
                where.append(policy.env)
    return [AnalyserFinding(*key, envs=tuple(envs)) for key, envs in sorted(envs_of.items())]


def load_reviewed(path: Path = LIST_PATH) -> List[Dict[str, str]]:
    entries = yaml.safe_load(path.read_text()) or []
    for number, entry in enumerate(entries, 1):
        missing = {"tool", "check", "policy", "why"} - set(entry)
        if missing or not str(entry.get("why", "")).strip():
            raise BadListEntry(f"{path} entry {number}: missing {sorted(missing) or ['why']}")
    return entries


def _listed(finding: AnalyserFinding, entry: Mapping[str, str]) -> bool:
    return (entry["tool"], entry["check"]) == (finding.tool, finding.check) and \
        fnmatch.fnmatchcase(finding.policy, entry["policy"]) and str(entry.get("detail", "")) in finding.detail


def unreviewed(findings: List[AnalyserFinding], reviewed: List[Dict[str, str]],
               ) -> Tuple[List[AnalyserFinding], List[Dict[str, str]]]:
    """(findings no entry explains, entries that explain no finding)."""
    open_findings = [finding for finding in findings if not any(_listed(finding, entry) for entry in reviewed)]
    stale = [entry for entry in reviewed if not any(_listed(finding, entry) for finding in findings)]
    return open_findings, stale
