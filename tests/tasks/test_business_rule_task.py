"""DMN decisions and business rule tasks: deployed beside BPMN (API, admin, deploy_workflow), versioned by key,
evaluated with their hit policy in the script sandbox when a process reaches its business rule task."""

import io
from xml.sax.saxutils import escape

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from core.errors import InvalidInput
from tasks.bpmn import dmn, engine
from tasks.bpmn.decisions import decision_deploy
from tasks.bpmn.workflows import definition_deploy, process_start
from tasks.models import DecisionDefinition, WorkflowTask
from tests.tasks.engine.documents import bpmn_document, linear_process

from .engine.documents import DECISION_FILE, RULE_TASK_FILE

pytestmark = pytest.mark.django_db

DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def table_document(hit_policy: str, rules: list[tuple[str, str]], *, aggregation: str = "") -> str:
    """A one-input, one-output decision `grade` over `score`: each rule (input entry, output entry)."""
    body = "".join(
        f'<rule id="r{n}"><inputEntry id="i{n}"><text>{escape(entry)}</text></inputEntry>'
        f'<outputEntry id="o{n}"><text>{escape(output)}</text></outputEntry></rule>'
        for n, (entry, output) in enumerate(rules)
    )
    extra = f' aggregation="{aggregation}"' if aggregation else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{DMN_NS}" id="d" name="d" namespace="x">\n'
        f'<decision id="grade" name="Grade">\n<decisionTable id="t" hitPolicy="{hit_policy}"{extra}>'
        '<input id="in" label="Score"><inputExpression id="ie" typeRef="number"><text>score</text></inputExpression>'
        f'</input><output id="out" label="Grade" name="grade" typeRef="string"/>{body}</decisionTable></decision>'
        "</definitions>"
    )


def only(document: str) -> dict:
    return dmn.parse_decisions(dmn_xml=document)[0]


RULES = [(">= 90", '"A"'), ("[50..90[", '"B"'), ("> 70", '"B+"'), ("-", '"any"')]


def test_first_gives_the_first_matching_rule():
    assert dmn.evaluate(only(table_document("FIRST", RULES)), {"score": 75}) == [{"grade": "B"}]


def test_collect_gives_every_matching_rule_in_order():
    assert dmn.evaluate(only(table_document("COLLECT", RULES)), {"score": 75}) == [
        {"grade": "B"},
        {"grade": "B+"},
        {"grade": "any"},
    ]


def test_unique_refuses_more_than_one_matching_rule_and_gives_the_one_that_does():
    decision = only(table_document("UNIQUE", [(">= 90", '"A"'), ("< 90", '"B"'), ("> 95", '"A+"')]))
    assert dmn.evaluate(decision, {"score": 10}) == [{"grade": "B"}]
    with pytest.raises(engine.ScriptError, match="more than one rule: rows 1, 3"):
        dmn.evaluate(decision, {"score": 99})


def test_no_matching_rule_gives_an_empty_result():
    assert dmn.evaluate(only(table_document("UNIQUE", [(">= 90", '"A"')])), {"score": 10}) == []


def test_entries_read_as_camunda_modeler_writes_them():
    decision = only(table_document("FIRST", [('"gold","silver"', "1"), ("not(3)", "2"), ("]1..3]", "3")]))
    assert dmn.evaluate(decision, {"score": "silver"}) == [{"grade": 1}]
    assert dmn.evaluate(decision, {"score": 2}) == [{"grade": 2}]
    assert dmn.evaluate(decision, {"score": 3}) == [{"grade": 3}]


@pytest.mark.parametrize(
    ("document", "element_id", "message"),
    [
        (table_document("PRIORITY", RULES), "t", "hit policy 'PRIORITY' is not supported"),
        (table_document("COLLECT", RULES, aggregation="SUM"), "t", "aggregation"),
        (table_document("FIRST", [("__import__('os')", '"A"')]), "i0", "__"),
        (table_document("FIRST", [("-", "score.__class__")]), "o0", "__"),
    ],
)
def test_a_decision_this_engine_cannot_evaluate_is_refused_naming_the_element_and_line(document, element_id, message):
    with pytest.raises(engine.BpmnError, match=message) as raised:
        dmn.parse_decisions(dmn_xml=document)
    assert raised.value.element_id == element_id
    assert raised.value.line is not None


def test_a_decision_is_deployed_through_the_api_versioned_by_key(supervisor_sam, api_as):
    client = api_as(supervisor_sam)
    response = client.post("/api/workflow/decisions/", {"dmn_xml": DECISION_FILE.read_text()}, format="json")
    assert response.status_code == 201, response.json()
    assert [(d["decision_key"], d["version"], d["hit_policy"]) for d in response.json()] == [("claim_risk", 1, "FIRST")]
    again = client.post("/api/workflow/decisions/", {"dmn_xml": DECISION_FILE.read_text()}, format="json")
    assert (again.status_code, again.json()[0]["version"]) == (200, 1)
    changed = DECISION_FILE.read_text().replace("&gt;= 10000", "&gt;= 5000")
    assert client.post("/api/workflow/decisions/", {"dmn_xml": changed}, format="json").json()[0]["version"] == 2
    listed = client.get("/api/workflow/decisions/").json()
    assert [d["version"] for d in listed["results"]] == [2, 1]
    evaluated = client.post(
        f"/api/workflow/decisions/{listed['results'][0]['id']}/evaluate/",
        {"variables": {"amount": 6000, "tier": "x"}},
        format="json",
    )
    assert evaluated.json() == {"result": [{"risk": "high", "review_queue": "legal-review"}]}


def test_a_bad_decision_is_refused_by_the_api_with_its_line(supervisor_sam, api_as):
    response = api_as(supervisor_sam).post(
        "/api/workflow/decisions/", {"dmn_xml": table_document("PRIORITY", RULES)}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_dmn"
    assert "line" in response.json()["detail"]


def test_someone_who_may_not_deploy_cannot_deploy_a_decision(caseworker_alice, api_as):
    response = api_as(caseworker_alice).post(
        "/api/workflow/decisions/", {"dmn_xml": DECISION_FILE.read_text()}, format="json"
    )
    assert response.status_code == 403
    assert not DecisionDefinition.objects.exists()


def start(user, **variables):
    return process_start(user=user, process_key="decide_risk", business_key="R-1", variables=variables)


def open_keys(instance):
    return [t.task_definition_key for t in WorkflowTask.objects.filter(process_instance=instance, status="OPEN")]


def test_a_business_rule_task_evaluates_the_latest_decision_and_the_process_routes_on_it(supervisor_sam):
    decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text())
    definition_deploy(user=supervisor_sam, bpmn_xml=RULE_TASK_FILE.read_text())

    high = start(supervisor_sam, amount=20000, tier="gold")
    assert high.variables["assessment"] == {"risk": "high", "review_queue": "legal-review"}
    assert open_keys(high) == ["legal_check"]
    low = start(supervisor_sam, amount=2000, tier="gold")
    assert (low.variables["assessment"]["risk"], open_keys(low)) == ("low", ["quick_check"])

    # A new version of the decision applies to the next run, without redeploying the process.
    decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text().replace("&gt;= 10000", "&gt;= 1000"))
    assert open_keys(start(supervisor_sam, amount=2000, tier="gold")) == ["legal_check"]


def test_a_pinned_decision_version_is_the_one_evaluated(supervisor_sam):
    decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text())
    decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text().replace("&gt;= 10000", "&gt;= 1000"))
    pinned = RULE_TASK_FILE.read_text().replace(
        'camunda:decisionRef="claim_risk"',
        'camunda:decisionRef="claim_risk" camunda:decisionRefBinding="version" camunda:decisionRefVersion="1"',
    )
    definition_deploy(user=supervisor_sam, bpmn_xml=pinned)
    assert open_keys(start(supervisor_sam, amount=2000, tier="gold")) == ["quick_check"]


def test_without_a_result_variable_the_outputs_become_process_variables(supervisor_sam):
    decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text())
    definition_deploy(
        user=supervisor_sam,
        bpmn_xml=RULE_TASK_FILE.read_text()
        .replace(' camunda:resultVariable="assessment"', "")
        .replace('assessment["risk"]', "risk"),
    )
    instance = start(supervisor_sam, amount=20000, tier="x")
    assert (instance.variables["risk"], instance.variables["review_queue"]) == ("high", "legal-review")


def test_a_model_evaluating_a_decision_not_deployed_is_refused_at_deploy(supervisor_sam):
    with pytest.raises(
        InvalidInput, match="assess_risk evaluates decision claim_risk, which is not deployed"
    ) as raised:
        definition_deploy(user=supervisor_sam, bpmn_xml=RULE_TASK_FILE.read_text())
    assert raised.value.code == "unknown_decision"


def test_a_business_rule_task_without_a_decision_ref_is_refused_with_its_id_and_line():
    document = bpmn_document(linear_process('    <bpmn:businessRuleTask id="rules"/>', node_ids=["rules"]))
    with pytest.raises(engine.BpmnError, match="decisionRef") as raised:
        engine.parse_definition(bpmn_xml=document)
    assert (raised.value.element_id, raised.value.line) == ("rules", 5)


def test_deploy_workflow_deploys_a_dmn_file(supervisor_sam):
    out = io.StringIO()
    call_command("deploy_workflow", str(DECISION_FILE), stdout=out)
    assert out.getvalue().strip() == "Deployed decision claim_risk version 1."
    assert DecisionDefinition.objects.get().table["hit_policy"] == "FIRST"


def test_the_admin_shows_the_table_and_evaluates_it_on_given_inputs(supervisor_sam):
    decision = decision_deploy(user=supervisor_sam, dmn_xml=DECISION_FILE.read_text()).decisions[0]
    client = Client()
    client.force_login(supervisor_sam)

    page = client.get(reverse("admin:tasks_decisiondefinition_change", args=[decision.pk])).content.decode()
    assert '<table class="dmn-table">' in page
    assert "<td><code>[1000..10000[</code></td>" in page
    assert "Large claims are high risk" in page

    url = reverse("admin:tasks_decisiondefinition_evaluate", args=[decision.pk])
    result = client.post(url, {"input_0": "2000", "input_1": "gold"}).content.decode()
    assert "<td>low</td><td>triage</td>" in result


def test_the_admin_uploads_a_dmn_file(supervisor_sam):
    client = Client()
    client.force_login(supervisor_sam)
    upload = io.BytesIO(DECISION_FILE.read_bytes())
    upload.name = "risk.dmn"
    response = client.post(reverse("admin:tasks_decisiondefinition_add"), {"dmn_file": upload})
    assert response.status_code == 302
    assert DecisionDefinition.objects.get().decision_key == "claim_risk"
