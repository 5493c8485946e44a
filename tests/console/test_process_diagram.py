"""The process diagram of the supervisor console: tasks.bpmn.diagram's SVG, engine.element_states and the admin page."""

import re
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.utils import timezone
from lxml import etree

from entitlements.models import SecurityEvent, User
from tasks.bpmn import engine
from tasks.bpmn.diagram import ACTIVE, COMPLETED, NEUTRAL, process_diagram_for, process_diagram_svg
from tasks.bpmn.diagram_layout import BPMN_NS, BPMNDI_NS, FLOW_NODE_KINDS, DiagramError
from tasks.bpmn.workflows import definition_deploy, process_fire_due_timers, process_start
from tasks.models import ProcessInstance, WorkflowTask
from tasks.services import task_claim, task_complete

from .helpers import PROCESSES_URL, legal_supervisor

DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
SVG = "{http://www.w3.org/2000/svg}"
# Six today: session, user, the two permission lookups, the scoped instance with its definition, its tasks.
DIAGRAM_PAGE_QUERY_BUDGET = 8
INTAKE_VARIABLES = {"received_on": "2026-10-02", "received_via": "WEB"}
TRIAGE_ESCALATES_AFTER = timedelta(hours=49)

TINY_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://x">
  <bpmn:process id="tiny" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="check" name="{name}"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

EXTERNAL_ENTITY = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE bpmn:definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://x">
  <bpmn:process id="tiny" isExecutable="true"><bpmn:userTask id="check" name="&secret;"/></bpmn:process>
</bpmn:definitions>
"""

ENTITY_IN_TEXT = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE bpmn:definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://x">
  <bpmn:process id="tiny" isExecutable="true">
    <bpmn:textAnnotation id="note"><bpmn:text>&secret;</bpmn:text></bpmn:textAnnotation>
    <bpmn:userTask id="check" name="Check"/>
  </bpmn:process>
</bpmn:definitions>
"""

BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE bpmn:definitions [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://x">
  <bpmn:process id="tiny" isExecutable="true"><bpmn:userTask id="check" name="&lol9;"/></bpmn:process>
</bpmn:definitions>
"""


# --- helpers ------------------------------------------------------------------------------------------------------


def node_states(svg: str) -> dict[str, str]:
    """Flow node id -> the state the SVG draws it in."""
    root = ElementTree.fromstring(svg)
    return {
        g.get("data-element-id"): g.get("data-state")
        for g in root.iter(f"{SVG}g")
        if "bpmn-node" in (g.get("class") or "").split()
    }


def flow_node_ids(bpmn_xml: str, *, with_shapes: bool) -> list[str]:
    """The model's flow nodes: all of them, or those its diagram (BPMN DI) has a shape for."""
    root = etree.fromstring(bpmn_xml.encode())
    nodes = [
        e.get("id")
        for e in root.iter()
        if isinstance(e.tag, str)
        and etree.QName(e).namespace == BPMN_NS
        and etree.QName(e).localname in FLOW_NODE_KINDS
    ]
    if not with_shapes:
        return nodes
    shaped = {s.get("bpmnElement") for s in root.iter(f"{{{BPMNDI_NS}}}BPMNShape")}
    return [node for node in nodes if node in shaped]


def centre_x(group: ElementTree.Element) -> float:
    """The horizontal centre of a node's outline (its first circle or rect)."""
    outline = next(e for e in group if e.tag in (f"{SVG}circle", f"{SVG}rect"))
    if outline.tag == f"{SVG}circle":
        return float(outline.get("cx"))
    return float(outline.get("x")) + float(outline.get("width")) / 2


def without_diagram(bpmn_xml: str) -> str:
    return re.sub(r"<bpmndi:BPMNDiagram.*</bpmndi:BPMNDiagram>", "", bpmn_xml, flags=re.S)


def work(user, instance, task_key, variables):
    """`user` claims and completes the open task `task_key` of `instance`."""
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key=task_key, status="OPEN")
    task_claim(user=user, task_id=task.pk)
    task_complete(user=user, task_id=task.pk, variables=variables)


@pytest.fixture
def instance(supervisor_sam):
    definition = definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    return process_start(user=supervisor_sam, process_key=definition.process_key, business_key="CASE-DIAGRAM-1")


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def diagram_url(instance) -> str:
    return f"{PROCESSES_URL}{instance.pk}/diagram/"


# --- the drawing --------------------------------------------------------------------------------------------------


def test_diagram_draws_one_shape_per_flow_node_of_the_model_diagram():
    bpmn_xml = DEMO_BPMN.read_text()

    svg = process_diagram_svg(bpmn_xml=bpmn_xml, element_states={})

    drawn = node_states(svg)
    shaped = flow_node_ids(bpmn_xml, with_shapes=True)
    assert sorted(drawn) == sorted(shaped)
    assert len(drawn) == len(shaped) == len(ElementTree.fromstring(svg).findall(f".//{SVG}g[@data-state]"))
    assert set(drawn.values()) == {NEUTRAL}
    assert ElementTree.fromstring(svg).get("viewBox")


def test_diagram_draws_lanes_flows_and_gateway_markers_from_the_model_diagram():
    svg = process_diagram_svg(bpmn_xml=DEMO_BPMN.read_text(), element_states={})

    root = ElementTree.fromstring(svg)
    lanes = [g.get("data-element-id") for g in root.iter(f"{SVG}g") if g.get("class") == "bpmn-lane"]
    flows = [g for g in root.iter(f"{SVG}g") if "bpmn-sequenceFlow" in (g.get("class") or "")]
    assert lanes == ["lane_intake", "lane_triage", "lane_escalations", "lane_fraud_investigation", "lane_legal_review"]
    assert len(flows) == DEMO_BPMN.read_text().count("<bpmn:sequenceFlow ")
    assert all(f.find(f"{SVG}polyline").get("marker-end") == "url(#bpmn-arrow)" for f in flows)
    gateway = root.find(f".//{SVG}g[@data-element-id='triage_done']")
    assert gateway.find(f"{SVG}polygon") is not None and len(gateway.findall(f"{SVG}line")) == 2  # the X


def test_diagram_escapes_markup_in_element_names():
    hostile = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;"

    svg = process_diagram_svg(bpmn_xml=TINY_PROCESS.format(name=hostile), element_states={"check": ACTIVE})

    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;" in svg
    root = ElementTree.fromstring(svg)  # still one well-formed SVG document
    assert not [e for e in root.iter() if e.tag.endswith(("script", "img", "foreignObject"))]
    assert "".join(root.find(f".//{SVG}g[@data-element-id='check']/{SVG}text").itertext()).startswith("<script>")


def test_a_model_without_diagram_information_still_draws_every_node():
    bpmn_xml = without_diagram(DEMO_BPMN.read_text())
    assert "BPMNShape" not in bpmn_xml

    svg = process_diagram_svg(bpmn_xml=bpmn_xml, element_states={"triage": ACTIVE, "case_opened": COMPLETED})

    drawn = node_states(svg)
    assert sorted(drawn) == sorted(flow_node_ids(bpmn_xml, with_shapes=False))
    assert (drawn["triage"], drawn["case_opened"], drawn["closure"]) == (ACTIVE, COMPLETED, NEUTRAL)
    edges = [g for g in ElementTree.fromstring(svg).iter(f"{SVG}g") if "bpmn-sequenceFlow" in (g.get("class") or "")]
    assert len(edges) == bpmn_xml.count("<bpmn:sequenceFlow ")


def test_automatic_layout_places_nodes_left_to_right_by_longest_path():
    svg = process_diagram_svg(bpmn_xml=TINY_PROCESS.format(name="Check"), element_states={})

    root = ElementTree.fromstring(svg)
    x = {g.get("data-element-id"): centre_x(g) for g in root.iter(f"{SVG}g") if g.get("data-state")}
    assert x["start"] < x["check"] < x["end"]


@pytest.mark.parametrize(
    "bpmn_xml",
    [EXTERNAL_ENTITY, BILLION_LAUGHS, ENTITY_IN_TEXT, BILLION_LAUGHS.replace('name="&lol9;"/>', "/>")],
    ids=["external-entity", "billion-laughs", "entity-in-text", "unused-entities"],
)
def test_a_document_with_a_doctype_or_entities_is_refused_without_expanding_them(bpmn_xml):
    with pytest.raises(DiagramError) as refused:
        process_diagram_svg(bpmn_xml=bpmn_xml, element_states={})

    assert "root:" not in refused.value.detail and "lollol" not in refused.value.detail


def test_xml_that_is_not_bpmn_is_refused():
    with pytest.raises(DiagramError):
        process_diagram_svg(bpmn_xml="<svg xmlns='http://www.w3.org/2000/svg'/>", element_states={})


# --- where an instance stands -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_intake_the_triage_task_is_active_and_earlier_steps_completed(instance, caseworker_alice):
    work(caseworker_alice, instance, "intake_review", INTAKE_VARIABLES)

    diagram = process_diagram_for(instances=ProcessInstance.objects.all(), process_instance_id=instance.pk)

    drawn = node_states(diagram.svg)
    assert drawn["triage"] == ACTIVE
    assert drawn["triage_escalation_timer"] == ACTIVE  # the escalation timer is waiting
    assert (drawn["case_opened"], drawn["intake_review"]) == (COMPLETED, COMPLETED)
    assert {drawn[key] for key in ("escalated_triage", "fraud_investigation", "closure", "case_closed")} == {NEUTRAL}
    assert [t.task_definition_key for t in diagram.current_tasks] == ["triage"]


@pytest.mark.django_db
def test_a_claimed_task_is_active_and_gateways_passed_are_completed(instance, caseworker_alice, fraud_investigator_bob):
    work(caseworker_alice, instance, "intake_review", INTAKE_VARIABLES)
    work(caseworker_alice, instance, "triage", {"allegation_type": "FRAUD"})
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key="fraud_investigation")
    task_claim(user=fraud_investigator_bob, task_id=task.pk)

    diagram = process_diagram_for(instances=ProcessInstance.objects.all(), process_instance_id=instance.pk)

    drawn = node_states(diagram.svg)
    assert drawn["fraud_investigation"] == ACTIVE
    assert {drawn[key] for key in ("triage", "triage_done", "allegation_type_gateway")} == {COMPLETED}
    assert (drawn["misconduct_review"], drawn["triage_escalation_timer"]) == (NEUTRAL, NEUTRAL)
    assert [(t.task_definition_key, t.assignee) for t in diagram.current_tasks] == [
        ("fraud_investigation", fraud_investigator_bob)
    ]


@pytest.mark.django_db
def test_engine_element_states_follow_a_fired_timer(instance, caseworker_alice):
    work(caseworker_alice, instance, "intake_review", INTAKE_VARIABLES)
    process_fire_due_timers(now=timezone.now() + TRIAGE_ESCALATES_AFTER)
    instance.refresh_from_db()

    states = engine.element_states(spec=instance.definition.engine_spec, state=instance.engine_state)

    assert states["escalated_triage"] == engine.ELEMENT_ACTIVE
    assert states["triage_escalation_timer"] == engine.ELEMENT_COMPLETED
    assert "triage" not in states  # cancelled by the interrupting timer: neither current nor done


@pytest.mark.django_db
def test_an_unreadable_engine_state_still_shows_the_task_rows(instance):
    ProcessInstance.objects.filter(pk=instance.pk).update(engine_state={"tasks": {}})

    diagram = process_diagram_for(instances=ProcessInstance.objects.all(), process_instance_id=instance.pk)

    drawn = node_states(diagram.svg)
    assert drawn["intake_review"] == ACTIVE
    assert drawn["case_opened"] == NEUTRAL  # only the engine knows the start event was passed


# --- the admin page -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_supervisor_sees_the_diagram_page_in_a_bounded_number_of_queries(
    supervisor_client, instance, caseworker_alice, django_assert_max_num_queries
):
    work(caseworker_alice, instance, "intake_review", INTAKE_VARIABLES)

    with django_assert_max_num_queries(DIAGRAM_PAGE_QUERY_BUDGET):
        response = supervisor_client.get(diagram_url(instance))

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") >= 1 and 'class="bpmn-diagram"' in page
    assert 'data-element-id="triage" data-state="active"' in page
    assert re.search(r'<tr data-task-definition-key="triage">.*?Triage.*?triage.*?Open', page, re.S)
    assert "Current position" in page and "Completed" in page  # the legend
    assert f'href="{PROCESSES_URL}{instance.pk}/change/"' in page  # breadcrumbs back to the instance


@pytest.mark.django_db
def test_the_changelist_and_the_change_page_link_to_the_diagram(supervisor_client, instance):
    listing = supervisor_client.get(PROCESSES_URL)
    change = supervisor_client.get(f"{PROCESSES_URL}{instance.pk}/change/")

    link = f'href="{diagram_url(instance)}"'
    assert listing.status_code == change.status_code == 200
    assert link in listing.content.decode() and ">Diagram<" in listing.content.decode()
    assert link in change.content.decode()


@pytest.mark.django_db
def test_an_instance_outside_the_supervisors_queues_is_not_found(client, instance):
    client.force_login(legal_supervisor())

    response = client.get(diagram_url(instance))

    assert response.status_code == 404
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert denial.details["process_instance_id"] == instance.pk and denial.details["admin"] is True
    assert denial.path == diagram_url(instance)


@pytest.mark.django_db
def test_an_unknown_instance_is_not_found_and_not_audited(supervisor_client, instance):
    before = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").count()

    assert supervisor_client.get(f"{PROCESSES_URL}{instance.pk + 1000}/diagram/").status_code == 404
    assert SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").count() == before


@pytest.mark.django_db
def test_a_caseworker_is_sent_to_the_admin_login(client, caseworker_alice, instance):
    client.force_login(caseworker_alice)

    response = client.get(diagram_url(instance))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.django_db
def test_staff_without_view_permission_on_process_instances_is_refused(client, instance):
    client.force_login(User.objects.create_user(username="staff-no-perms", password="pw-for-tests-1", is_staff=True))

    response = client.get(diagram_url(instance))

    assert response.status_code == 403


# --- in a browser -------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_supervisor_opens_the_diagram_of_a_running_case_in_a_browser(live_server_url, browser_page):
    from playwright.sync_api import expect

    from tests.conftest import DEMO_PASSWORD
    from tests.pages.conftest import screenshot

    supervisor = User.objects.get(username="supervisor")
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    definition = definition_deploy(user=supervisor, bpmn_xml=DEMO_BPMN.read_text())
    running = process_start(user=supervisor, process_key=definition.process_key, business_key="CASE-2026-0042")
    work(alice, running, "intake_review", INTAKE_VARIABLES)
    work(alice, running, "triage", {"allegation_type": "FRAUD"})
    task_claim(user=bob, task_id=WorkflowTask.objects.get(process_instance=running, status="OPEN").pk)

    page = browser_page
    page.goto(f"{live_server_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/inbox/")

    page.goto(f"{live_server_url}{PROCESSES_URL}")
    page.get_by_role("link", name="Diagram").first.click()
    expect(page.get_by_role("heading", name=re.compile("Diagram of"))).to_be_visible()
    expect(page.locator('#process-diagram g.bpmn-node[data-state="active"]')).to_have_count(1)
    expect(page.locator('#process-diagram g[data-element-id="fraud_investigation"]')).to_have_attribute(
        "data-state", "active"
    )
    expect(page.locator("#current-tasks tbody tr")).to_have_count(1)
    expect(page.locator("#current-tasks")).to_contain_text("bob")
    box = page.locator("#process-diagram svg").bounding_box()
    assert box["width"] > 0 and box["height"] > 0
    screenshot(page, "process-diagram.png")
    assert page.dialogs == []
