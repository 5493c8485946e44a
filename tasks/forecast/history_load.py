"""Write generated queue history (tasks/forecast/history.py) into the real tables, ending now, for demos and for
measuring the SLA-risk forecast on live data: tasks, their CREATED/CLAIMED/COMPLETED history, a team of caseworkers
with a role on the queue. Bulk inserts (bulk_create in batches), as the bench loaders do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Conflict
from entitlements.models import Department, User
from entitlements.services import role_assignment_grant, role_save
from queues.calendar import WorkCalendar, add_business_hours
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for
from queues.services import queue_save

from ..models import TaskEventType, TaskHistory, TaskStatus, WorkflowTask
from .history import DAILY_TASKS, DAYS_PER_WEEK, HOURS_PER_DAY, generate

BATCH = 1000
# Used when the queue has no business calendar: the generator's 8-hour, 5-day week.
DEFAULT_WEEK = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass(frozen=True)
class LoadedHistory:
    queue: str
    caseworkers: int
    tasks: int
    active: int
    events: int


def _calendar_for(queue: WorkflowQueue) -> WorkCalendar:
    calendar = business_calendar_for(queue=queue)
    if calendar is not None and all(
        sum(close - open_ for open_, close in day) == HOURS_PER_DAY * 60 for day in calendar.week[:DAYS_PER_WEEK]
    ):
        return calendar
    return WorkCalendar.build(time_zone="UTC", working_hours=DEFAULT_WEEK)


@transaction.atomic
def history_generate(
    *,
    queue_name: str,
    weeks: int,
    seed: int,
    department: str | None = None,
    daily_tasks: float = DAILY_TASKS,
    now: datetime | None = None,
) -> LoadedHistory:
    """Simulate `weeks` weeks of the queue up to now and store them. Refuses a queue that already holds tasks."""
    now = now or timezone.now()
    if WorkflowTask.objects.filter(queue_id=queue_name).exists():
        raise Conflict(f"queue {queue_name} already holds tasks: generate history into a new queue")
    fields = {"display_name": f"{queue_name} (generated history)"}
    if department:
        fields["department"] = Department.objects.get(dept_code=department)
    queue = queue_save(queue_name=queue_name, **fields)
    calendar = _calendar_for(queue)

    history = generate(weeks=weeks + 1, seed=seed, daily_tasks=daily_tasks)
    role = role_save(
        role_code=f"{queue_name}-history",
        name=f"{queue_name} caseworker",
        queue_names=[queue_name],
        permissions=["view", "work"],
    )
    start_day = (now.astimezone(calendar.time_zone) - timedelta(weeks=weeks)).date()
    start_day -= timedelta(days=start_day.weekday())  # that week's Monday
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=calendar.time_zone).astimezone(UTC)
    users = {}
    for worker in history.caseworkers:
        user, _ = User.objects.get_or_create(username=f"{queue_name}-cw{worker}", defaults={"email": ""})
        role_assignment_grant(user=user, role=role, valid_from=start, reason="generated history")
        users[worker] = user

    def wall(hours: float) -> datetime:
        return add_business_hours(start, hours, calendar).astimezone(UTC)

    rows, events = [], []
    for sim in history.tasks:
        created = wall(sim.created)
        if created > now:
            break
        claimed = wall(sim.claimed) if sim.claimed is not None else None
        completed = wall(sim.completed) if sim.completed is not None else None
        claimed = claimed if claimed and claimed <= now else None
        completed = completed if claimed and completed and completed <= now else None
        status = TaskStatus.COMPLETED if completed else TaskStatus.CLAIMED if claimed else TaskStatus.OPEN
        task = WorkflowTask(
            queue=queue,
            name=sim.task_type.name,
            task_definition_key=sim.task_type.key,
            priority=sim.task_type.priority,
            status=status,
            due_date=wall(sim.due),
            created_at=created,
            claimed_at=claimed,
            completed_at=completed,
            assignee=users[sim.assignee] if claimed else None,
        )
        rows.append(task)
        events.append((task, sim.assignee, created, claimed, completed))
    WorkflowTask.objects.bulk_create(rows, batch_size=BATCH)
    history_rows = []
    for task, worker, created, claimed, completed in events:
        history_rows.append(
            TaskHistory(task=task, event_type=TaskEventType.CREATED, created_at=created, new_values={"status": "OPEN"})
        )
        if claimed:
            history_rows.append(
                TaskHistory(
                    task=task,
                    event_type=TaskEventType.CLAIMED,
                    actor=users[worker],
                    created_at=claimed,
                    new_values={"status": "CLAIMED"},
                )
            )
        if completed:
            history_rows.append(
                TaskHistory(
                    task=task,
                    event_type=TaskEventType.COMPLETED,
                    actor=users[worker],
                    created_at=completed,
                    new_values={"status": "COMPLETED"},
                )
            )
    TaskHistory.objects.bulk_create(history_rows, batch_size=BATCH)
    claimed_now = sum(1 for task in rows if task.status == TaskStatus.CLAIMED)
    WorkflowQueue.objects.filter(pk=queue.pk).update(current_load=F("current_load") + claimed_now)
    return LoadedHistory(
        queue=queue_name,
        caseworkers=len(users),
        tasks=len(rows),
        active=sum(1 for task in rows if task.status != TaskStatus.COMPLETED),
        events=len(history_rows),
    )
