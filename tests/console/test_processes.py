"""Process instance actions of the console: suspend, resume, cancel through tasks.workflows."""
from pathlib import Path

import pytest

from tasks.models import ProcessStatus, TaskStatus
from tasks.workflows import definition_deploy, process_start

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
