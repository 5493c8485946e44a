"""Process instance actions of the console: suspend, resume, cancel through tasks.bpmn.workflows."""

from pathlib import Path

import pytest

from entitlements.models import User
from tasks.bpmn.workflows import definition_deploy, process_start
from tasks.models import ProcessStatus, TaskStatus

from .helpers import PROCESSES_URL, legal_supervisor, post_action

pytestmark = pytest.mark.django_db

DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"


@pytest.fixture
def instance(supervisor_sam):
    definition = definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    return process_start(user=supervisor_sam, process_key=definition.process_key, business_key="CASE-1")


def test_supervisor_suspends_resumes_and_cancels_a_process(client, supervisor_sam, instance):
    client.force_login(supervisor_sam)

    post_action(client, PROCESSES_URL, "suspend_processes", [instance.pk])
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.SUSPENDED

    post_action(client, PROCESSES_URL, "resume_processes", [instance.pk])
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.RUNNING

    post_action(client, PROCESSES_URL, "cancel_processes", [instance.pk], reason="withdrawn")
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.CANCELLED
    assert not instance.tasks.filter(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]).exists()


def test_department_supervisor_cannot_suspend_a_process_of_another_department(client, instance):
    client.force_login(legal_supervisor())

    post_action(client, PROCESSES_URL, "suspend_processes", [instance.pk])

    instance.refresh_from_db()
    assert instance.status == ProcessStatus.RUNNING


@pytest.fixture
def instance_with_incident(supervisor_sam):
    from datetime import timedelta

    from django.utils import timezone

    from tasks.bpmn.workflows import process_fire_due_timers
    from tests.tasks.test_process_incidents import HEAVY_SIZE, start_timer_model, timer_model

    definition_deploy(user=supervisor_sam, bpmn_xml=timer_model())
    # Started two hours ago, so its timer is due now, when the action retries it.
    instance = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE, now=timezone.now() - timedelta(hours=2))
    process_fire_due_timers()
    assert instance.incidents.filter(resolved_at__isnull=True).exists()
    return instance


def test_the_instance_page_shows_its_incidents(client, supervisor_sam, instance_with_incident):
    client.force_login(supervisor_sam)

    response = client.get(f"{PROCESSES_URL}{instance_with_incident.pk}/change/")

    assert response.status_code == 200
    assert b"heavy" in response.content and b"script stopped at its CPU or memory limit" in response.content


def test_retry_action_resolves_the_incident_once_the_cause_is_fixed(
    client, supervisor_sam, instance_with_incident, settings
):
    client.force_login(supervisor_sam)
    settings.WORKFLOW_SCRIPT_MEMORY_MB = 256

    response = post_action(client, PROCESSES_URL, "retry_incidents", [instance_with_incident.pk])

    assert response.status_code == 302
    incident = instance_with_incident.incidents.get()
    assert incident.resolved_at is not None and incident.resolved_by == supervisor_sam


def test_retry_action_reports_a_step_that_fails_again(client, supervisor_sam, instance_with_incident):
    client.force_login(supervisor_sam)

    response = post_action(client, PROCESSES_URL, "retry_incidents", [instance_with_incident.pk])

    assert "failed again at heavy" in " ".join(str(m) for m in response.wsgi_request._messages)
    assert instance_with_incident.incidents.get().resolved_at is None


def test_department_supervisor_cannot_retry_an_incident_of_another_department(client, instance_with_incident, settings):
    client.force_login(legal_supervisor())
    settings.WORKFLOW_SCRIPT_MEMORY_MB = 256

    post_action(client, PROCESSES_URL, "retry_incidents", [instance_with_incident.pk])

    assert instance_with_incident.incidents.get().resolved_at is None


def test_a_superuser_without_a_supervising_role_cannot_retry_an_incident(client, instance_with_incident, settings):
    root = User.objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(root)
    settings.WORKFLOW_SCRIPT_MEMORY_MB = 256  # the step would now succeed: only the refusal leaves it open

    listed = {row.pk for row in client.get(PROCESSES_URL).context["cl"].result_list}
    post_action(client, PROCESSES_URL, "retry_incidents", [instance_with_incident.pk])

    assert instance_with_incident.pk in listed
    assert instance_with_incident.incidents.get().resolved_at is None
