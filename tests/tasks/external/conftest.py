"""External task fixtures: the records-check model (as Camunda Modeler writes it) and worker accounts."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction

from entitlements.models import User
from tasks.bpmn import workflows
from tests.factories import UserFactory

RECORDS_CHECK_FILE = Path(__file__).with_name("records_check.bpmn")
TOPIC = "records-check"


def grant_worker(user) -> None:
    user.user_permissions.add(Permission.objects.get(codename="work_external_tasks", content_type__app_label="tasks"))


@pytest.fixture(scope="session", autouse=True)
def wakeups_stopped_at_the_end(django_db_setup):
    """Long polls open a listening connection per process; it must be closed before the test database is dropped."""
    from tasks.external.wakeups import WAKEUPS

    yield
    WAKEUPS.stop()


def deploy_with_worker(worker_username: str):
    """The records-check model deployed by the demo supervisor, and a new worker account: (supervisor, worker)."""
    supervisor = User.objects.get(username="supervisor")
    workflows.definition_deploy(user=supervisor, bpmn_xml=RECORDS_CHECK_FILE.read_text())
    worker = UserFactory(username=worker_username)
    grant_worker(worker)
    return supervisor, worker


@pytest.fixture
def committed_setup(committed_db):
    """Committed (for tests with several connections): the records-check model deployed, and a worker account."""
    return deploy_with_worker("records-worker")


def start_instances(supervisor, count, prefix="C"):
    """Start `count` records-check instances in one transaction (business keys prefix-0, prefix-1, ...)."""
    with transaction.atomic():
        for n in range(count):
            workflows.process_start(user=supervisor, process_key="records_check", business_key=f"{prefix}-{n}")


@pytest.fixture
def records_check_definition(supervisor_sam):
    return workflows.definition_deploy(user=supervisor_sam, bpmn_xml=RECORDS_CHECK_FILE.read_text())


@pytest.fixture
def start_records_check(records_check_definition, supervisor_sam):
    """Start an instance: it waits at the external task 'Activity_records_check' (topic records-check)."""

    def start(business_key: str = "CASE-1", **variables):
        return workflows.process_start(
            user=supervisor_sam, process_key="records_check", business_key=business_key, variables=variables
        )

    return start


@pytest.fixture
def worker_account(demo_org):
    """An integration account granted tasks.work_external_tasks, and nothing else."""
    user = UserFactory(username="records-worker")
    grant_worker(user)
    return user


@pytest.fixture
def other_worker_account(demo_org):
    user = UserFactory(username="other-worker")
    grant_worker(user)
    return user
