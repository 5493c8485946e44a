"""Summary emails: each supervisor gets the figures of their own queues only, through a real SMTP receiver
(tests/tasks/conftest.py: smtp)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from entitlements.services import role_assignment_grant, role_save
from tasks.console.summaries import supervisor_summary
from tasks.models import Alert, AlertKind, AlertSeverity
from tasks.services import task_claim
from tasks.sla.maintenance import refresh_dashboards
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def supervisor_of(username, queue_name, *, email=None):
    user = UserFactory(username=username, **({"email": email} if email is not None else {}))
    role = role_save(
        role_code=f"{username}-lead",
        name=f"{username} lead",
        queue_names=[queue_name],
        permissions=["view", "supervise"],
    )
    role_assignment_grant(user=user, role=role)
    return user


def parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


@pytest.fixture
def two_departments(demo_org, make_task, caseworker_alice):
    """Intake work (open, claimed, overdue, a breach) for one supervisor; legal work for the other."""
    irma = supervisor_of("irma", "intake")
    lena = supervisor_of("lena", "legal-review")
    make_task("intake", "Intake open one")
    claimed = make_task("intake", "Intake claimed one")
    task_claim(user=caseworker_alice, task_id=claimed.pk)
    late = make_task("intake", "Intake late one", due_date=timezone.now() - timedelta(hours=5))
    Alert.objects.create(
        kind=AlertKind.SLA_BREACH,
        dedupe_key=f"sla:{late.pk}:1",
        queue_name="intake",
        task=late,
        level=1,
        severity=AlertSeverity.CRITICAL,
        summary="breach",
    )
    for n in range(3):
        make_task("legal-review", f"Legal only task {n}")
    refresh_dashboards()
    return irma, lena, late


def test_each_supervisor_is_emailed_the_figures_of_their_own_queues_only(smtp, two_departments):
    irma, lena, late = two_departments

    call_command("send_summaries", "--period", "daily", stdout=open("/dev/null", "w"))

    irma_mail = smtp.to(irma.email)
    assert irma_mail["Subject"].startswith("Daily summary of your queues")
    text, html = parts(irma_mail)
    for body in (text, html):
        assert "intake" in body and "legal-review" not in body and "Legal only task" not in body
        assert "Intake late one" in body and f"/tasks/{late.pk}/" in body
    assert "Backlog (open and claimed): 3" in text
    assert "SLA breaches in the period: 1" in text
    assert "open 2, claimed 1, overdue 1, breaches 1" in text

    lena_text, lena_html = parts(smtp.to(lena.email))
    for body in (lena_text, lena_html):
        assert "legal-review" in body and "intake" not in body.lower() and "Intake late one" not in body
    assert "Backlog (open and claimed): 3" in lena_text and "SLA breaches in the period: 0" in lena_text


def test_no_summary_goes_to_supervisors_without_an_email_or_to_users_supervising_nothing(
    smtp, two_departments, caseworker_alice
):
    quiet = supervisor_of("quinn", "intake", email="")

    call_command("send_summaries", "--period", "weekly", stdout=open("/dev/null", "w"))

    recipients = {address for addresses, _ in smtp.messages for address in addresses}
    assert caseworker_alice.email not in recipients
    assert quiet.pk and "" not in recipients
    assert {"irma@example.org", "lena@example.org"} <= recipients
    assert smtp.to("irma@example.org")["Subject"].startswith("Weekly summary")


def test_a_breach_before_the_period_is_not_counted(two_departments):
    irma, _, _ = two_departments
    Alert.objects.update(created_at=timezone.now() - timedelta(days=2))

    assert supervisor_summary(user=irma, period="daily").breaches == 0
    assert supervisor_summary(user=irma, period="weekly").breaches == 1


def test_a_user_who_supervises_nothing_has_no_summary(caseworker_alice):
    assert supervisor_summary(user=caseworker_alice, period="daily") is None


def test_the_summary_never_carries_a_cases_allegations(smtp, demo_org, supervisor_sam, caseworker_alice):
    from tasks.bpmn.workflows import definition_deploy
    from tests.pages.conftest import DEMO_BPMN, open_fraud_case

    definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    open_fraud_case(caseworker_alice)
    refresh_dashboards()

    call_command("send_summaries", "--user", "supervisor", stdout=open("/dev/null", "w"))

    text, html = parts(smtp.to(supervisor_sam.email))
    assert "intake" in text
    assert "Supplier invoices were altered" not in text + html


def test_dry_run_prints_and_sends_nothing(smtp, two_departments, capsys):
    call_command("send_summaries", "--user", "irma", "--dry-run")

    assert "Subject: Daily summary of your queues" in capsys.readouterr().out
    assert smtp.messages == []


def test_the_console_previews_ones_own_summary_and_only_a_superuser_picks_another(two_departments):
    irma, lena, _ = two_departments
    for user in (irma, lena):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(irma)

    own = client.get("/admin/summaries/preview/?period=weekly")
    other = client.get("/admin/summaries/preview/?user=lena")

    assert own.status_code == 200
    assert "Intake late one" in own.content.decode() and "Weekly summary" in own.content.decode()
    assert other.status_code == 404


def test_beat_schedules_daily_and_weekly_summaries_and_the_purge_as_registered_jobs():
    import json

    from django_celery_beat.models import PeriodicTask

    from workflow_project.celery import app

    app.loader.import_default_modules()
    jobs = {
        job.name: (job.task, json.loads(job.kwargs), job.crontab.day_of_week)
        for job in PeriodicTask.objects.filter(task__in=["workflow.send_summaries", "workflow.purge_notifications"])
    }

    assert jobs == {
        "Daily summary emails": ("workflow.send_summaries", {"period": "daily"}, "*"),
        "Weekly summary emails": ("workflow.send_summaries", {"period": "weekly"}, "1"),
        "Purge old notifications": ("workflow.purge_notifications", {}, "*"),
    }
    assert {"workflow.send_summaries", "workflow.send_summary", "workflow.purge_notifications"} <= set(app.tasks)
