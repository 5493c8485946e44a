"""Writes and reads of DMN decisions: deploy (each decision of a document as the next version of its key), find the
version a business rule task runs, and evaluate one on given inputs (the admin's test form)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max

from core.errors import Conflict, InvalidInput, PermissionDenied
from entitlements.access import holds_right
from entitlements.models import Right, SecurityEvent
from entitlements.services import security_event_record
from tasks.locks import decisions_for_update
from tasks.models import DecisionDefinition

from . import dmn, engine

MAX_DMN_BYTES = 1_000_000
DECISION_VERSIONS_KEPT = 128


@dataclass(frozen=True)
class DecisionDeployment:
    decisions: list[DecisionDefinition]
    created: bool  # False: every decision of the document was already the latest active version, unchanged


def _parse(dmn_xml) -> list[dict]:
    if not isinstance(dmn_xml, str) or not dmn_xml.strip():
        raise InvalidInput("dmn_xml is required", fields={"dmn_xml": ["This field is required."]})
    if len(dmn_xml.encode()) > MAX_DMN_BYTES:
        raise InvalidInput("the document is too large", fields={"dmn_xml": [f"At most {MAX_DMN_BYTES} bytes."]})
    try:
        return dmn.parse_decisions(dmn_xml=dmn_xml)
    except engine.EngineError as exc:
        where = ", ".join(
            part
            for part in (f"element {exc.element_id}" if exc.element_id else "", f"line {exc.line}" if exc.line else "")
            if part
        )
        detail = f"{exc.detail} ({where})" if where else exc.detail
        raise InvalidInput(detail, code="invalid_dmn", fields={"dmn_xml": [detail]}) from exc


@transaction.atomic
def decision_deploy(*, user, dmn_xml: str) -> DecisionDeployment:
    """Validate a DMN document and store each of its decisions as the next version of its key, unless the latest
    active version already has this document (then nothing is written). Needs the deploy_workflows right."""
    if not holds_right(user=user, right=Right.DEPLOY_WORKFLOWS):
        raise PermissionDenied(
            "you may not deploy decisions: no role of yours grants deploy_workflows", code="deploy_refused"
        )
    tables = _parse(dmn_xml)
    keys = sorted(table["key"] for table in tables)
    # Serialise concurrent deploys of these keys; the unique constraint is the last word.
    list(decisions_for_update().filter(decision_key__in=keys).values_list("pk", flat=True))
    current = {
        d.decision_key: d
        for d in DecisionDefinition.objects.filter(decision_key__in=keys, is_active=True)
        .order_by("decision_key", "-version")
        .distinct("decision_key")
    }
    if all(key in current and current[key].dmn_xml == dmn_xml for key in keys):
        return DecisionDeployment(decisions=[current[key] for key in keys], created=False)
    latest = dict(
        DecisionDefinition.objects.filter(decision_key__in=keys)
        .values("decision_key")
        .annotate(v=Max("version"))
        .values_list("decision_key", "v")
    )
    deployed = []
    try:
        with transaction.atomic():
            for table in tables:
                deployed.append(
                    DecisionDefinition.objects.create(
                        decision_key=table["key"],
                        version=latest.get(table["key"], 0) + 1,
                        name=table["name"],
                        dmn_xml=dmn_xml,
                        table=table,
                        deployed_by=user,
                    )
                )
    except IntegrityError:
        raise Conflict("these decisions were deployed at the same moment; try again", code="deploy_race") from None
    for decision in deployed:
        security_event_record(
            event_type=SecurityEvent.Type.WORKFLOW_DEPLOYED,
            actor=user,
            details={
                "decision_key": decision.decision_key,
                "version": decision.version,
                "replaced_version": latest.get(decision.decision_key),
                "deployer": user.get_username(),
                "decision_id": decision.pk,
            },
        )
    return DecisionDeployment(decisions=deployed, created=True)


def decision_find(*, decision_key: str, version: int | None = None) -> DecisionDefinition | None:
    """The pinned version of a decision, or its latest active one."""
    decisions = DecisionDefinition.objects.filter(decision_key=decision_key).defer("dmn_xml")
    if version is not None:
        return decisions.filter(version=version).first()
    return decisions.filter(is_active=True).order_by("-version").first()


@functools.lru_cache(maxsize=DECISION_VERSIONS_KEPT)
def _table(decision_id: int) -> dict:
    """A deployed version's table, read once per process: a version never changes (a new deploy is a new row)."""
    return DecisionDefinition.objects.values_list("table", flat=True).get(pk=decision_id)


def decision_for_run(decision_key: str, version: int | None) -> dict | None:
    """The table a business rule task evaluates (the resolver dmn.py asks; registered in tasks/apps.py)."""
    if version is not None:
        found = DecisionDefinition.objects.filter(decision_key=decision_key, version=version)
    else:
        found = DecisionDefinition.objects.filter(decision_key=decision_key, is_active=True).order_by("-version")
    decision_id = found.values_list("pk", flat=True).first()
    return _table(decision_id) if decision_id is not None else None


def check_decisions_deployed(parsed: engine.ParsedDefinition) -> None:
    """Refuse a model whose business rule tasks name a decision that is not deployed."""
    for element_id, info in parsed.spec.get("business_rule_tasks", {}).items():
        if decision_for_run(info["decision_ref"], info["version"]) is None:
            what = info["decision_ref"] + (f" version {info['version']}" if info["version"] else "")
            detail = f"business rule task {element_id} evaluates decision {what}, which is not deployed"
            raise InvalidInput(detail, code="unknown_decision", fields={"bpmn_xml": [detail]})


def decision_evaluate(*, decision: DecisionDefinition, variables: dict) -> list[dict]:
    """Evaluate a deployed decision on `variables` (a test: nothing is stored); InvalidInput when it fails."""
    if not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    try:
        return dmn.evaluate(decision.table, variables)
    except engine.EngineError as exc:
        raise InvalidInput(exc.detail, code="decision_failed", fields={"variables": [exc.detail]}) from exc
