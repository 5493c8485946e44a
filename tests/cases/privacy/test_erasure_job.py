"""The console's erasure runs on the maintenance worker: the web's login cannot rewrite history, the worker's can."""

from __future__ import annotations

import pytest
from django_celery_results.models import TaskResult

from core.db_roles import MaintenanceRoleUnavailable
from entitlements.models import SecurityEvent, User
from tests.factories import UserFactory
from tests.project.test_celery_beat import Worker, wait_for

REASON = "Dora Quill left in 2026 and asked to be forgotten"


def the_web_cannot_take_the_maintenance_role(monkeypatch):
    """In production the web logs in as workflow_app, which does not hold workflow_maintenance; the tests' login
    does, so the request path is made to meet the refusal the web would (core/db_roles.py)."""

    def unavailable(*args, **kwargs):
        raise MaintenanceRoleUnavailable("the web's login does not hold workflow_maintenance")

    monkeypatch.setattr("cases.privacy.erasure.maintenance_role", unavailable)


@pytest.mark.slow
def test_the_admin_queues_the_erasure_and_the_maintenance_worker_does_it(
    committed_db, client, test_database_url, monkeypatch
):
    root = UserFactory(username="erasure-root", is_superuser=True, is_staff=True)
    dora = UserFactory(username="dquill", email="dora.quill@example.org", first_name="Dora", last_name="Quill")
    the_web_cannot_take_the_maintenance_role(monkeypatch)
    client.force_login(root)

    page = client.post(
        "/admin/entitlements/user/",
        {"action": "erase_users", "_selected_action": [str(dora.pk)], "reason": REASON, "apply": "Erase"},
        follow=True,
    ).content.decode()

    assert "Queued the erasure of 1 user(s)." in page and "Not erased" not in page
    assert User.objects.get(pk=dora.pk).username == "dquill"  # the request itself rewrote nothing
    worker = Worker(test_database_url)  # logs in as the tests do: the maintenance role, acting as workflow_app
    worker.start()
    try:
        assert wait_for(lambda: User.objects.get(pk=dora.pk).username == f"erased-user-{dora.pk}"), worker.stop()[
            -3000:
        ]
        assert wait_for(lambda: TaskResult.objects.filter(task_name="cases.erase_person", status="SUCCESS").exists())
    finally:
        worker.stop()
    event = SecurityEvent.objects.filter(event_type="PERSONAL_DATA_ERASED", details__user_id=dora.pk).get()
    assert (event.actor_id, event.path) == (root.pk, "/admin/entitlements/user/")
    assert "Quill" not in event.details["reason"]
    result = TaskResult.objects.get(task_name="cases.erase_person", status="SUCCESS")
    assert '"erased": true' in result.result and "Quill" not in result.task_kwargs and "Quill" not in result.result
