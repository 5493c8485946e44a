"""The supervisor dashboard at the admin index: its figures, its query budget and who can reach it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tasks.console.dashboard import supervisor_dashboard, weighted_median
from tasks.services import task_claim, task_complete
from tasks.sla.maintenance import refresh_dashboards

from .helpers import legal_supervisor

pytestmark = pytest.mark.django_db

DASHBOARD_QUERY_BUDGET = 20


def test_dashboard_counts_the_supervised_queues_from_the_refreshed_views(supervisor_sam, caseworker_alice, make_task):
    make_task("intake", "Open one")
    make_task("intake", "Overdue one", due_date=timezone.now() - timedelta(hours=1))
    claimed = make_task("intake", "Claimed one")
    task_claim(user=caseworker_alice, task_id=claimed.pk)
    done = make_task("intake", "Done one")
    task_claim(user=caseworker_alice, task_id=done.pk)
    task_complete(user=caseworker_alice, task_id=done.pk)
    refresh_dashboards()

    dashboard = supervisor_dashboard(user=supervisor_sam)

    intake = next(q for q in dashboard.queues if q.queue_name == "intake")
    assert (intake.open, intake.claimed, intake.overdue) == (2, 1, 1)
    assert intake.current_load == 1
    assert intake.sla_compliance == {"24h": 100.0, "7d": 100.0, "30d": 100.0}
    assert intake.median_completion_seconds is not None
    assert sum(count for _, count in dashboard.throughput_hourly) == 1
    alice = next(c for c in dashboard.caseworkers if c.username == "alice")
    assert (alice.claimed_now, alice.completed_today) == (1, 1)
    assert dashboard.last_refreshed_at is not None


def test_dashboard_shows_only_the_queues_a_department_supervisor_supervises(demo_org):
    lena = legal_supervisor()

    dashboard = supervisor_dashboard(user=lena)

    assert [q.queue_name for q in dashboard.queues] == ["legal-review"]


def test_dashboard_of_a_user_supervising_nothing_is_empty(caseworker_alice):
    dashboard = supervisor_dashboard(user=caseworker_alice)

    assert dashboard.queues == [] and dashboard.caseworkers == []


def test_admin_index_renders_the_dashboard_in_a_bounded_number_of_queries(
    client, supervisor_sam, make_task, django_assert_max_num_queries
):
    for i in range(30):
        make_task("intake" if i % 2 else "triage", f"Task {i}")
    refresh_dashboards()
    client.force_login(supervisor_sam)

    with django_assert_max_num_queries(DASHBOARD_QUERY_BUDGET):
        response = client.get("/admin/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="supervisor-dashboard"' in body
    assert body.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3
    assert 'data-queue="intake"' in body


def test_caseworker_cannot_reach_the_admin(client, caseworker_alice):
    client.force_login(caseworker_alice)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_caseworker_cannot_reach_the_task_changelist(client, caseworker_alice):
    client.force_login(caseworker_alice)

    response = client.get("/admin/tasks/workflowtask/")

    assert response.status_code == 302


def test_weighted_median_counts_each_hour_by_its_completions():
    assert weighted_median([(1, 10.0), (5, 100.0), (1, 1000.0)]) == 100.0
    assert weighted_median([]) is None


def test_dashboard_refresh_time_is_the_latest_refresh(supervisor_sam):
    refresh_dashboards()
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(refreshed_at) FROM flowable.dashboard_refreshes")
        latest = cursor.fetchone()[0]

    assert supervisor_dashboard(user=supervisor_sam).last_refreshed_at == latest


def test_average_age_is_as_of_now_and_never_negative(supervisor_sam, make_task):
    # A refresh in the same transaction as the tasks it counts (seed_demo's) saw them younger than its own start.
    task = make_task("intake", "Made after the refresh began")
    task.__class__.objects.filter(pk=task.pk).update(created_at=timezone.now() + timedelta(minutes=1))
    refresh_dashboards()
    intake = next(q for q in supervisor_dashboard(user=supervisor_sam).queues if q.queue_name == "intake")
    assert intake.avg_open_age_seconds == 0


def test_an_integration_account_is_not_listed_among_the_caseworkers(supervisor_sam, integration_account, make_task):
    task = make_task("intake", "Claimed by the integration")
    task.__class__.objects.filter(pk=task.pk).update(status="CLAIMED", assignee=integration_account)
    dashboard = supervisor_dashboard(user=supervisor_sam)
    assert "integration" not in [c.username for c in dashboard.caseworkers]
