"""The console's external tasks: an item whose retries ran out shows its incident; "retry" returns it to the pool."""

import pytest
from django.contrib.auth.models import Permission

from tasks.external import services
from tasks.external.services import TopicRequest
from tasks.models import ExternalTask, ProcessIncident
from tests.console.helpers import post_action
from tests.factories import UserFactory

from .conftest import TOPIC

pytestmark = pytest.mark.django_db
EXTERNAL_TASKS_URL = "/admin/tasks/externaltask/"


def fetch(worker):
    return services.external_tasks_fetch_and_lock(
        user=worker, worker_id="w1", topics=[TopicRequest(topic_name=TOPIC, lock_duration_ms=60_000)], max_tasks=1
    )


@pytest.fixture
def failed_item(start_records_check, worker_account):
    instance = start_records_check("CASE-1")
    (locked,) = fetch(worker_account)
    services.external_task_fail(
        user=worker_account, external_task_id=locked.external_task_id, worker_id="w1", error_message="down", retries=0
    )
    return ExternalTask.objects.get(process_instance=instance)


def console_user(*codenames):
    user = UserFactory(username="console-admin", is_staff=True, is_superuser=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="tasks"))
    return user


def test_the_console_lists_a_failed_item_and_its_retry_returns_it_to_the_pool(client, failed_item, worker_account):
    client.force_login(console_user("change_externaltask"))

    listing = client.get(EXTERNAL_TASKS_URL)
    assert listing.status_code == 200 and "records-check" in listing.content.decode()
    post_action(client, EXTERNAL_TASKS_URL, "retry_external_tasks", [failed_item.pk], retries=2)

    failed_item.refresh_from_db()
    assert failed_item.retries == 2
    assert ProcessIncident.objects.get(external_task=failed_item).resolved_at is not None
    assert [i.external_task_id for i in fetch(worker_account)] == [failed_item.pk]


def test_retry_is_refused_to_a_superuser_without_the_explicit_permission(client, failed_item):
    client.force_login(console_user())

    post_action(client, EXTERNAL_TASKS_URL, "retry_external_tasks", [failed_item.pk], retries=2)

    failed_item.refresh_from_db()
    assert failed_item.retries == 0
    assert ProcessIncident.objects.get(external_task=failed_item).resolved_at is None
