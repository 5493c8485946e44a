"""Migrating running instances to another version of their process key, with an explicit activity mapping: the
instances at mapped elements continue on the new version, one at an element without a counterpart is reported and
left as it was; who may; what bad input answers."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from entitlements.models import User
from entitlements.services import role_assignment_grant, role_save
from tasks import services
from tasks.bpmn import workflows
from tasks.models import ProcessInstance, ProcessStatus, TaskHistory, TaskStatus, WorkflowDefinition, WorkflowTask
from tests.tasks.engine.documents import bpmn_document, user_task

NAMESPACES = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
    'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
    'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
)


def camunda_model(*steps: str) -> str:
    """A process `loan` as Camunda Modeler writes it: start → each userTask of `steps` (in triage) → end."""
    ids = ["StartEvent_1", *steps, "EndEvent_1"]
    nodes = [
        '    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_0</bpmn:outgoing></bpmn:startEvent>',
        *(
            f'    <bpmn:userTask id="{step}" name="{step.title()}" camunda:candidateGroups="triage">'
            f"<bpmn:incoming>Flow_{i}</bpmn:incoming><bpmn:outgoing>Flow_{i + 1}</bpmn:outgoing></bpmn:userTask>"
            for i, step in enumerate(steps)
        ),
        f'    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>Flow_{len(steps)}</bpmn:incoming></bpmn:endEvent>',
    ]
    flows = [
        f'    <bpmn:sequenceFlow id="Flow_{i}" sourceRef="{ids[i]}" targetRef="{ids[i + 1]}"/>'
        for i in range(len(ids) - 1)
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<bpmn:definitions {NAMESPACES} id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn" '
        'exporter="Camunda Modeler" exporterVersion="5.20.0">\n'
        '  <bpmn:process id="loan" name="Loan" isExecutable="true">\n'
        + "\n".join(nodes + flows)
        + "\n  </bpmn:process>\n</bpmn:definitions>\n"
    )


V1 = camunda_model("review", "check")  # check is gone in v2
V2 = camunda_model("review_v2", "approve")
MAPPING = {"review": "review_v2"}


def open_tasks(instance) -> list[WorkflowTask]:
    return list(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).order_by("task_id")
    )


def start_on_v1(supervisor, count: int) -> list[ProcessInstance]:
    """`count` instances started on version 1 (at review), then version 2 deployed."""
    v1 = workflows.definition_deploy(user=supervisor, bpmn_xml=V1)
    instances = [
        workflows.process_start(user=supervisor, process_key="loan", business_key=f"L-{n}") for n in range(count)
    ]
    v2 = workflows.definition_deploy(user=supervisor, bpmn_xml=V2)
    assert (v1.version, v2.version) == (1, 2)
    assert {i.definition_id for i in instances} == {v1.pk}
    return instances


@pytest.fixture
def on_v1(supervisor_sam):
    (instance,) = start_on_v1(supervisor_sam, 1)
    return instance


# --- the done-when -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_hundred_instances_move_to_v2_and_the_one_at_an_unmapped_element_stays_on_v1(
    api_as, supervisor_sam, caseworker_alice
):
    instances = start_on_v1(supervisor_sam, 100)
    v1, v2 = WorkflowDefinition.objects.filter(process_key="loan").order_by("version")
    moved_on = instances[37]
    (review,) = open_tasks(moved_on)
    alice = api_as(caseworker_alice)
    assert alice.post(f"/api/workflow/tasks/{review.pk}/claim").status_code == 200
    assert alice.post(f"/api/workflow/tasks/{review.pk}/complete", {"variables": {}}, format="json").status_code == 200
    (check,) = open_tasks(moved_on)
    assert check.task_definition_key == "check"
    state_before = ProcessInstance.objects.get(pk=moved_on.pk).engine_state

    response = api_as(supervisor_sam).post(
        "/api/workflow/processes/migrate",
        {"process_ids": [i.pk for i in instances], "target_version": 2, "activity_mapping": MAPPING},
        format="json",
    )

    assert response.status_code == 200, response.content
    report = response.json()
    assert report["refused"] == {str(moved_on.pk): ["check"]}
    assert sorted(report["migrated"]) == sorted(i.pk for i in instances if i.pk != moved_on.pk)
    left = ProcessInstance.objects.get(pk=moved_on.pk)
    assert left.definition_id == v1.pk and left.engine_state == state_before
    assert [t.task_definition_key for t in open_tasks(left)] == ["check"]
    for instance in instances:
        if instance.pk == moved_on.pk:
            continue
        assert ProcessInstance.objects.get(pk=instance.pk).definition_id == v2.pk
        (task,) = open_tasks(instance)
        assert task.task_definition_key == "review_v2"
        assert alice.post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 200
        done = alice.post(f"/api/workflow/tasks/{task.pk}/complete", {"variables": {}}, format="json")
        assert done.status_code == 200, done.content
        (approve,) = open_tasks(instance)  # the step v2 added
        assert approve.task_definition_key == "approve"
        assert alice.post(f"/api/workflow/tasks/{approve.pk}/claim").status_code == 200
        done = alice.post(f"/api/workflow/tasks/{approve.pk}/complete", {"variables": {}}, format="json")
        assert done.status_code == 200, done.content
        assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.COMPLETED


@pytest.mark.django_db
def test_one_instance_migrates_through_the_api_keeping_its_claim_with_a_history_event(
    api_as, supervisor_sam, caseworker_alice, on_v1
):
    (review,) = open_tasks(on_v1)
    alice = api_as(caseworker_alice)
    assert alice.post(f"/api/workflow/tasks/{review.pk}/claim").status_code == 200

    response = api_as(supervisor_sam).post(
        f"/api/workflow/processes/{on_v1.pk}/migrate",
        {"target_version": 2, "activity_mapping": MAPPING, "reason": "model fix"},
        format="json",
    )

    assert response.status_code == 200, response.content
    task = WorkflowTask.objects.get(pk=review.pk)
    assert (task.task_definition_key, task.status, task.assignee_id) == (
        "review_v2",
        TaskStatus.CLAIMED,
        caseworker_alice.pk,
    )
    event = TaskHistory.objects.get(task=review, event_type="MIGRATED")
    assert (event.actor, event.comment, event.old_values, event.new_values) == (
        supervisor_sam,
        "model fix",
        {"definition_version": 1, "task_definition_key": "review"},
        {"definition_version": 2, "task_definition_key": "review_v2"},
    )
    assert alice.post(f"/api/workflow/tasks/{review.pk}/complete", {"variables": {}}, format="json").status_code == 200
    assert [t.task_definition_key for t in open_tasks(on_v1)] == ["approve"]


@pytest.mark.django_db
def test_an_unmapped_active_element_is_refused_with_409_listing_it(api_as, supervisor_sam, on_v1):
    response = api_as(supervisor_sam).post(
        f"/api/workflow/processes/{on_v1.pk}/migrate", {"target_version": 2}, format="json"
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "migration_refused" and body["fields"] == {"unmapped_element_ids": ["review"]}
    assert ProcessInstance.objects.get(pk=on_v1.pk).definition.version == 1
    assert [t.task_definition_key for t in open_tasks(on_v1)] == ["review"]


# --- who may, and bad input --------------------------------------------------------------------------------------


@pytest.fixture
def intake_supervisor(demo_org):
    role = role_save(
        role_code="intake-supervisor",
        name="Intake supervisor",
        queue_names=["intake"],
        permissions=["view", "supervise"],
    )
    user = User.objects.create_user("ivy", password="ivy-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="supervisor-console"))
    role_assignment_grant(user=user, role=role)
    return user


@pytest.mark.django_db
def test_only_supervisors_of_the_instances_queues_may_migrate_it(api_as, caseworker_alice, intake_supervisor, on_v1):
    for user in (caseworker_alice, intake_supervisor):
        response = api_as(user).post(
            f"/api/workflow/processes/{on_v1.pk}/migrate",
            {"target_version": 2, "activity_mapping": MAPPING},
            format="json",
        )
        assert response.status_code == 404 and response.json()["code"] == "process_not_found", response.content
        report = api_as(user).post(
            "/api/workflow/processes/migrate",
            {"process_ids": [on_v1.pk], "target_version": 2, "activity_mapping": MAPPING},
            format="json",
        )
        assert report.json() == {"migrated": [], "refused": {str(on_v1.pk): ["process_not_found"]}}
    assert ProcessInstance.objects.get(pk=on_v1.pk).definition.version == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_version": 7, "activity_mapping": MAPPING}, "target_version"),
        ({"target_version": 1, "activity_mapping": MAPPING}, "target_version"),  # already there
        ({"target_version": "two"}, "target_version"),
        ({"target_version": 2, "activity_mapping": {"nowhere": "review_v2"}}, "activity_mapping"),
        ({"target_version": 2, "activity_mapping": {"review": "nowhere"}}, "activity_mapping"),
        ({"target_version": 2, "activity_mapping": ["review"]}, "activity_mapping"),
        ({"activity_mapping": MAPPING}, "target_version"),
    ],
)
def test_bad_input_is_400_naming_the_field(api_as, supervisor_sam, on_v1, body, field):
    response = api_as(supervisor_sam).post(f"/api/workflow/processes/{on_v1.pk}/migrate", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert ProcessInstance.objects.get(pk=on_v1.pk).definition.version == 1


@pytest.mark.django_db
def test_a_finished_instance_is_409(api_as, supervisor_sam, on_v1):
    workflows.process_cancel(user=supervisor_sam, process_instance_id=on_v1.pk)
    response = api_as(supervisor_sam).post(
        f"/api/workflow/processes/{on_v1.pk}/migrate", {"target_version": 2, "activity_mapping": MAPPING}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "process_ended"


# --- the admin action ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_action_asks_for_version_and_mapping_then_reports_migrated_and_refused(
    client, supervisor_sam, caseworker_alice
):
    instances = start_on_v1(supervisor_sam, 3)
    (review,) = open_tasks(instances[0])
    services.task_claim(task_id=review.pk, user=caseworker_alice)
    services.task_complete(task_id=review.pk, user=caseworker_alice, variables={})  # now at check, gone in v2
    client.force_login(supervisor_sam)
    url = reverse("admin:tasks_processinstance_changelist")
    selected = {"action": "migrate_to_version", "_selected_action": [i.pk for i in instances]}

    page = client.post(url, selected)
    assert page.status_code == 200 and b'name="target_version"' in page.content  # the intermediate form
    bad = client.post(url, {**selected, "apply": "1", "target_version": "2", "activity_mapping": "review"})
    assert b"line 1 is not old_id=new_id" in bad.content
    done = client.post(
        url, {**selected, "apply": "1", "target_version": "2", "activity_mapping": "review = review_v2\n"}, follow=True
    )

    texts = [str(m) for m in get_messages(done.wsgi_request)]
    assert texts == ["2 migrated.", f"1 refused (left as they were): #{instances[0].pk}: check"]
    versions = [ProcessInstance.objects.get(pk=i.pk).definition.version for i in instances]
    assert versions == [1, 2, 2]


def timed_model(review_id: str) -> str:
    """`review_id` (triage) with a one-hour interrupting timer to chase; review → end, chase → chased."""
    return bpmn_document(
        '    <bpmn:startEvent id="start"/>\n'
        + user_task(review_id)
        + "\n"
        + user_task("chase")
        + f'\n    <bpmn:boundaryEvent id="after_an_hour" attachedToRef="{review_id}"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n"
        '    <bpmn:endEvent id="end"/><bpmn:endEvent id="chased"/>\n'
        f'    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="{review_id}"/>\n'
        f'    <bpmn:sequenceFlow id="f1" sourceRef="{review_id}" targetRef="end"/>\n'
        '    <bpmn:sequenceFlow id="f3" sourceRef="after_an_hour" targetRef="chase"/>\n'
        '    <bpmn:sequenceFlow id="f4" sourceRef="chase" targetRef="chased"/>'
    )


@pytest.mark.django_db
def test_a_task_with_a_boundary_timer_migrates_and_its_timer_still_fires(supervisor_sam):
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=timed_model("review"))
    instance = workflows.process_start(user=supervisor_sam, process_key="fixture", business_key="T-1")
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=timed_model("review_v2"))

    migrated = workflows.process_migrate(
        user=supervisor_sam, process_instance_id=instance.pk, target_version=2, activity_mapping=MAPPING
    )

    assert migrated.definition.version == 2 and migrated.next_timer_due_at is not None
    assert [t.task_definition_key for t in open_tasks(instance)] == ["review_v2"]
    assert workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2)) == 1
    assert [t.task_definition_key for t in open_tasks(instance)] == ["chase"]
