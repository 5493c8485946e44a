"""Daily and weekly summary emails to supervisors: their queues' backlog, SLA breaches, SLA compliance, top overdue.

Each summary covers only the queues its supervisor supervises now (entitlements.access.queues_for, through the
supervisor dashboard), and is read in the supervisor's own row scope, so it holds nothing they could not open in
the console. Figures come from where the dashboard takes them (tasks/console/dashboard.py: the materialized views as
of their last refresh), breaches from the alerts raised in the period (idx_alerts_kind_created), the top overdue
tasks from a walk of idx_workflow_tasks_overdue. Texts name tasks and queues, never a case's allegations or a
sealed field.

Beat runs `workflow.send_summaries` daily and weekly (tasks/jobs.py; migration tasks 0031); it queues one
`workflow.send_summary` job per supervisor, retried on a failed send. `manage.py send_summaries` sends now; the console previews one
(/admin/summaries/preview/).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count
from django.http import Http404
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone

from entitlements.access import supervisors
from entitlements.models import User
from entitlements.row_scope import acting_as, system_scope

from ..models import Alert, AlertKind, TaskStatus, WorkflowTask
from .dashboard import supervisor_dashboard

# A period, how far back it looks, and which of the dashboard's SLA windows measures it.
PERIODS = {"daily": (timedelta(days=1), "24h"), "weekly": (timedelta(days=7), "7d")}
TOP_OVERDUE = 10
SUBJECT = "{period} summary of your queues, {date:%Y-%m-%d}"


@dataclass
class QueueSummary:
    queue_name: str
    display_name: str
    open: int
    claimed: int
    overdue: int
    breaches: int
    sla_compliance: float | None


@dataclass
class OverdueTask:
    task_id: int
    name: str
    queue_name: str
    assignee: str
    due_date: datetime
    hours_overdue: float


@dataclass
class Summary:
    username: str
    email: str
    period: str
    since: datetime
    until: datetime
    queues: list[QueueSummary]
    top_overdue: list[OverdueTask]
    figures_as_of: datetime | None

    @property
    def backlog(self) -> int:
        return sum(q.open + q.claimed for q in self.queues)

    @property
    def breaches(self) -> int:
        return sum(q.breaches for q in self.queues)

    @property
    def subject(self) -> str:
        return SUBJECT.format(period=self.period.capitalize(), date=self.until)


def _period(period: str) -> tuple[timedelta, str]:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    return PERIODS[period]


def supervisor_summary(*, user, period: str, now: datetime | None = None) -> Summary | None:
    """The summary of the queues `user` supervises over the last day or week; None when they supervise none."""
    span, window = _period(period)
    now = now or timezone.now()
    since = now - span
    with acting_as(user):
        dashboard = supervisor_dashboard(user=user, now=now)
        names = [q.queue_name for q in dashboard.queues]
        if not names:
            return None
        breaches = dict(
            Alert.objects.filter(kind=AlertKind.SLA_BREACH, queue_name__in=names, created_at__gte=since)
            .order_by()
            .values_list("queue_name")
            .annotate(n=Count("pk"))
        )
        overdue = list(
            WorkflowTask.objects.filter(
                queue_id__in=names, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED], due_date__lt=now
            )
            .order_by("due_date", "task_id")
            .values_list("task_id", "name", "queue_id", "assignee__username", "due_date")[:TOP_OVERDUE]
        )
    return Summary(
        username=user.get_username(),
        email=user.email,
        period=period,
        since=since,
        until=now,
        queues=[
            QueueSummary(
                queue_name=q.queue_name,
                display_name=q.display_name,
                open=q.open,
                claimed=q.claimed,
                overdue=q.overdue,
                breaches=breaches.get(q.queue_name, 0),
                sla_compliance=q.sla_compliance.get(window),
            )
            for q in dashboard.queues
        ],
        top_overdue=[
            OverdueTask(task_id, name, queue, assignee or "", due, round((now - due).total_seconds() / 3600, 1))
            for task_id, name, queue, assignee, due in overdue
        ],
        figures_as_of=dashboard.last_refreshed_at,
    )


def summary_message(*, summary: Summary, connection=None) -> EmailMultiAlternatives:
    """The email: plain text with an HTML alternative, from templates/emails/summary.{txt,html}."""
    context = {"summary": summary, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=summary.subject,
        body=render_to_string("emails/summary.txt", context),
        to=[summary.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("emails/summary.html", context), "text/html")
    return message


def summary_send(*, user, period: str, now: datetime | None = None, connection=None) -> bool:
    """Send `user` their summary now; False (nothing sent) without an email address or a supervised queue.

    Calls the network: run it outside any transaction.
    """
    if not user.email or not user.is_active:
        return False
    summary = supervisor_summary(user=user, period=period, now=now)
    if summary is None:
        return False
    summary_message(summary=summary, connection=connection).send(fail_silently=False)
    return True


def summary_recipients() -> list[User]:
    """The supervisors a summary goes to: active, with an email address, supervising a queue now."""
    with system_scope():
        return list(supervisors().exclude(email="").filter(is_service_account=False).order_by("username"))


# --- the console's preview -------------------------------------------------------------------------------------------


def summary_preview(request):
    """The summary email as it would be sent now, for the console (admin.site.admin_view: staff only). A supervisor
    previews their own; a superuser picks any supervisor."""
    period = request.GET.get("period", "daily")
    if period not in PERIODS:
        period = "daily"
    chosen = request.user
    username = request.GET.get("user", "").strip()
    if username and username != request.user.get_username():
        if not request.user.is_superuser:
            raise Http404("no such supervisor")
        with system_scope():
            chosen = User.objects.filter(username=username, is_active=True).first()
        if chosen is None:
            raise Http404("no such supervisor")
    summary = supervisor_summary(user=chosen, period=period)
    context = {"summary": summary, "site_url": settings.SITE_URL}
    return render(
        request,
        "admin/console/summary_preview.html",
        {
            **admin.site.each_context(request),
            "title": "Summary email preview",
            "chosen": chosen,
            "period": period,
            "periods": list(PERIODS),
            "summary": summary,
            "supervisors": summary_recipients() if request.user.is_superuser else [],
            "text_body": render_to_string("emails/summary.txt", context) if summary else "",
            "html_body": render_to_string("emails/summary.html", context) if summary else "",
        },
    )
