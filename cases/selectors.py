"""Reads of cases: which cases a user may see (pages and API, supervisor console) and a case's audit timeline."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, JSONField, OuterRef, Q, QuerySet, TextChoices, Value
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from core.encrypted_fields import is_unreadable, keyed_hash_filter
from core.errors import InvalidInput, NotFound
from core.estimates import remembered_estimate
from entitlements.access import console_shows_every_row, queue_names_for
from entitlements.models import Capability
from entitlements.row_scope import exists_in_any_scope
from tasks.console.admin_console import COUNT_CAP
from tasks.models import TaskEventType, TaskHistory, WorkflowTask

from .models import Case, CaseEvent, CaseSubject, CaseWorkflowMapping
from .pagination import LIST_PAGE_SIZE, CountFigure, CountKind

SYSTEM_ACTOR = "system"
# Entries read per kind: a pathological case (a task bounced between queues thousands of times) still makes a
# page of bounded size. Only the most recent entries are read; the timeline then keeps the span all kinds cover.
TIMELINE_LIMIT_PER_KIND = 500
# The queues a routing history's hops reached (a jsonpath over [{from_queue, to_queue, at, by, reason}, ...]).
HOP_QUEUES_PATH = "$[*].to_queue"


# --- visibility ---------------------------------------------------------------------------------------------------
#
# A scope can be read two ways. Test each case: walk the cases in primary-key order and ask, per case, whether its
# mappings or tasks put it in scope; a page or a capped count stops as soon as it has its rows, so this is cheap when
# most cases are in scope and costly when few are (a capped count of a scope holding 1 % of the cases tests 100
# cases per match, and every case when fewer than COUNT_CAP match). Or read the matches: the case ids of the rows
# that put a case in scope, found through indexes, then the cases by primary key; the cost follows the number of
# matches, whatever the size of the table. PostgreSQL cannot stop a UNION early, nor probe one case by case (a
# constant case id reaches its branches, a join's does not), so it cannot switch between the two itself: a list asks
# the planner how many matches to expect and picks.

# Reading a row of the matches (random reads of mapping and task rows, hashed, then the case by key) costs about as
# much as testing this many cases in a walk, whose reads follow the keys (measured on 1M cases: bench/RESULTS.md).
# The matches hold about two rows per case (its hops and its task), which evens out a list reading them twice (its
# capped count and its page).
MATCH_READ_COST = 5


def cases_visible_to(*, user) -> QuerySet:
    """Caseworker pages and the API: a case is visible through the queues of its tasks, to its assignee and creator.

    Read from the matches, which suits one case (case_for_user: its id reaches every branch) and small scopes; the
    list reads through case_list, which picks."""
    return Case.objects.filter(pk__in=_visible_case_ids(user=user))


@dataclass(frozen=True)
class CaseList:
    """The case list's scope, and the planner's estimate of how many cases it holds (None when a filter narrows it:
    then it is counted, up to COUNT_CAP)."""

    cases: QuerySet
    estimate: int | None

    def count(self, cases: QuerySet | None = None) -> CountFigure:
        """How many cases the list holds, without reading the scope: the estimate when it is above COUNT_CAP, else
        a count that stops at COUNT_CAP ("at least" when it gets there)."""
        if self.estimate is not None and self.estimate > COUNT_CAP:
            return CountFigure(value=self.estimate, kind=CountKind.ESTIMATE)
        counted = (self.cases if cases is None else cases).order_by()[: COUNT_CAP + 1].count()
        if counted > COUNT_CAP:
            return CountFigure(value=COUNT_CAP, kind=CountKind.AT_LEAST)
        return CountFigure(value=counted, kind=CountKind.EXACT)


# What the case list page leaves in the database: it shows each case's number, title, status, priority, assignee
# and age, so the other sealed fields are neither read nor decrypted (the API's list returns them).
CASE_LIST_PAGE_DEFERRED = ("description", "allegations")


def case_list(*, user, condition: Q | None = None) -> CaseList:
    """The case list (API and page): the cases visible to the user (cases_visible_to's rule) that meet `condition`
    (case_list_filter), for keyset pages newest first by primary key (cases/pagination.py).

    When many cases are in scope a page walks the primary key's index backward from its cursor and tests each
    case (onecms.case_has_task_in_queues), stopping when the page is full: about a page of cases read for a
    caller who sees most of them, five pages' worth for one who sees a fifth, on page 1 as on page 5,000. When
    few are, the walk would test many cases per match, and reading the matches (tasks by queue, their mappings by
    process instance, both from covering indexes) costs their number instead. The planner's estimate of the
    matches picks (MATCH_READ_COST), and is the list's count when above COUNT_CAP.
    """
    viewable = queue_names_for(user=user, capability=Capability.VIEW)
    matches = _visible_case_ids(user=user, viewable=viewable)
    estimate, in_table = _case_scope_estimate(viewable)
    if _reading_matches_is_cheaper(matches, wanted=LIST_PAGE_SIZE, estimate=estimate, cases=in_table):
        cases = Case.objects.filter(pk__in=matches)
    else:
        cases = Case.objects.filter(_visible_case_test(user=user, viewable=viewable))
    if condition:
        return CaseList(cases=cases.filter(condition).select_related("assigned_to"), estimate=None)
    return CaseList(cases=cases.select_related("assigned_to"), estimate=estimate)


# --- subjects and encrypted fields -------------------------------------------------------------------------------

# List filters the API serves on encrypted data: exact matches through the keyed hash columns.
SUBJECT_FILTERS = {"subject_email": "email_hash", "subject_name": "name_hash"}
# Query parameters that name encrypted data: refused (400) rather than ignored, so a caller does not take an
# unfiltered list for an answer.
ENCRYPTED_FILTER_NAMES = frozenset(
    {"description", "allegations", "allegation_description", "full_name", "email", "phone", "notes", "date_of_birth"}
    | {f"subject_{name}" for name in ("full_name", "phone", "notes", "date_of_birth")}
)


def case_list_filter(*, params) -> Q:
    """The cases API's list filters: subject_email / subject_name (exact, normalised, through the keyed hashes).

    A parameter naming an encrypted field (description, allegations, a subject's personal fields, with or without
    a lookup suffix) is InvalidInput naming it: encrypted values cannot be searched."""
    condition = Q()
    for name in params:
        base = name.split("__", 1)[0]
        if base in ENCRYPTED_FILTER_NAMES or (base in SUBJECT_FILTERS and base != name):
            raise InvalidInput(
                f"{name}: {base} is encrypted and cannot be searched or filtered",
                code="encrypted_field_filter",
                fields={
                    name: [
                        f"{base} is encrypted and cannot be searched or filtered; "
                        f"exact matches: {', '.join(sorted(SUBJECT_FILTERS))}."
                    ]
                },
            )
    for name, hash_field in SUBJECT_FILTERS.items():
        value = params.get(name)
        if value:
            subjects = CaseSubject.objects.filter(keyed_hash_filter(CaseSubject, hash_field, value))
            condition &= Q(pk__in=subjects.values("case_id"))
    return condition


def case_subjects_matching(*, email: str | None = None, full_name: str | None = None) -> QuerySet:
    """Subjects whose email, or normalised name, is exactly this (any case; no access check: for operator
    commands such as a subject's export or erasure). Served by the keyed hash columns, never by decrypting."""
    if not email and not full_name:
        return CaseSubject.objects.none()
    condition = Q()
    if email:
        condition |= keyed_hash_filter(CaseSubject, "email_hash", email)
    if full_name:
        condition |= keyed_hash_filter(CaseSubject, "name_hash", full_name)
    return CaseSubject.objects.filter(condition).select_related("case")


def case_unreadable_fields(case: Case, subjects) -> list[str]:
    """The encrypted fields of a case (and its subjects) that cannot be opened: their key is not configured.

    Each shows encryption.UNREADABLE_MARKER; check_integrity and rotate_encryption_keys list the rows."""
    found = ["description"] if is_unreadable(case.description) else []
    for index, allegation in enumerate(case.allegations or []):
        if isinstance(allegation, dict) and is_unreadable(allegation.get("description")):
            found.append(f"allegations[{index}].description")
    for index, subject in enumerate(subjects):
        for name in ("full_name", "email", "phone", "date_of_birth", "notes"):
            if is_unreadable(getattr(subject, name)):
                found.append(f"subjects[{index}].{name}")
    return found


def case_for_user(*, user, case_id: int) -> Case:
    # The case id reaches every branch of the UNION (an index probe each), so the one case is checked, not the scope.
    case = cases_visible_to(user=user).filter(pk=case_id).first()
    if case is None:
        error = NotFound(f"case {case_id} not found", code="case_not_found")
        if exists_in_any_scope(Case.objects.filter(pk=case_id)):
            error.denial = {"case_id": case_id}
        raise error
    return case


def _visible_case_ids(*, user, viewable: list[str] | None = None) -> QuerySet:
    # The queue names first (one small query): as literals the planner knows how many tasks they hold; as a
    # subquery it guessed, and a correlated one called the queue function once per task row read.
    if viewable is None:
        viewable = queue_names_for(user=user, capability=Capability.VIEW)
    assigned = Case.objects.filter(assigned_to=user).order_by().values("pk")
    created = Case.objects.filter(created_by=user).order_by().values("pk")
    return assigned.union(created, _mappings_with_task_in(viewable).values("case_id"), all=True)


class CaseHasTaskInQueues(Func):
    """onecms.case_has_task_in_queues(case_id, queue_names): a workflow of the case has a task in one of the queues
    (cases/sql/case_has_task_in_queues.sql; _mappings_with_task_in asks the same of many cases at once)."""

    function = "onecms.case_has_task_in_queues"
    template = "%(function)s(%(expressions)s::text[])"
    output_field = BooleanField()

    def __init__(self, case_ref: str, queue_names: list[str]):
        super().__init__(F(case_ref), Value(list(queue_names)))


def _case_scope_estimate(viewable: list[str]) -> tuple[int, int]:
    """The planner's estimates of the cases with a task in the queues (onecms.case_scope_estimate: of the rows, not
    scaled down by their policies) and of the cases in the table, in one round trip; the first at most the second.
    Kept a while per set of queues (core/estimates.py)."""

    def planned() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT onecms.case_scope_estimate(%s::text[]), "
                "(SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c WHERE c.oid = 'onecms.cases'::regclass)",
                [list(viewable)],
            )
            in_queues, in_table = cursor.fetchone()
        return min(in_queues, in_table), in_table

    return tuple(remembered_estimate("case-scope\n" + "\n".join(sorted(viewable)), planned))


def _visible_case_test(*, user, viewable: list[str]) -> Q:
    """cases_visible_to's rule tested per case: assigned to or opened by the user, or one of its workflows has a
    task in a queue they may view."""
    return Q(assigned_to=user) | Q(created_by=user) | Q(CaseHasTaskInQueues("pk", viewable))


def supervised_case_filter(*, user, case_ref: str = "pk") -> Q:
    """The supervisor console's rule, for rows whose `case_ref` field holds a case id: every case when
    entitlements.access.console_shows_every_row; otherwise a case one of whose tasks is, or was, in a queue the
    user supervises now.

    "Was" is the routing history: cases/services.py appends a hop for every queue the case's work reaches (opened,
    next step, moved, escalated, overflowed, rebalanced), so its to_queue values name every queue a task of the case
    has been in; the task's current queue is checked too, for work that reached it without a hop.

    For lists: the changelists' capped count and page read the matches when the planner expects few of them
    (a department's supervisor), and test each case otherwise (a floor supervisor), see MATCH_READ_COST.
    """
    supervised = _supervised_queues(user)
    if supervised and _reading_matches_is_cheaper(_supervised_case_ids(supervised)):
        return Q(**{f"{case_ref}__in": _supervised_case_ids(supervised, through_hop_index=True)})
    return _supervised_case_test(supervised, case_ref=case_ref)


def cases_supervised_by(*, user) -> QuerySet:
    return Case.objects.filter(supervised_case_filter(user=user))


def _supervised_queues(user) -> list[str] | None:
    """The queue names the user supervises now (one small query); None when the console shows them every case
    (a superuser, see entitlements.access.console_shows_every_row)."""
    if console_shows_every_row(user=user):
        return None
    if user is None or not user.is_active:
        return []
    # As literals the planner knows how selective the queues are, and the jsonb ?| operator needs an array.
    return queue_names_for(user=user, capability=Capability.SUPERVISE)


def _queues_reached() -> Func:
    """The queues a mapping's hops reached, the expression idx_case_mapping_hop_queues indexes (migration 0003)."""
    return Func(
        F("routing_history"), Value(HOP_QUEUES_PATH), function="jsonb_path_query_array", output_field=JSONField()
    )


def _mappings_with_task_in(queue_names: list[str]) -> QuerySet:
    tasks = WorkflowTask.objects.filter(queue_id__in=queue_names).values("process_instance_id")
    return CaseWorkflowMapping.objects.filter(process_instance_id__in=tasks).order_by()


def _supervised_case_ids(supervised: list[str], *, through_hop_index: bool = False) -> QuerySet:
    """The matches: mappings whose hops reached a supervised queue (GIN index), and mappings whose process
    instance has a task in one now (tasks by queue, mappings by process instance).

    `through_hop_index` reads the first through onecms.mapping_ids_with_hops_to: row-level security keeps the
    planner from using the index for this query itself (`?|` is not leakproof). The planner's estimate of the
    matches (_reading_matches_is_cheaper) is taken from the query itself, which estimates as before."""
    if through_hop_index:
        mapping_ids = RawSQL("SELECT onecms.mapping_ids_with_hops_to(%s::text[])", (supervised,))
        reached = CaseWorkflowMapping.objects.filter(pk__in=mapping_ids)
    else:
        reached = CaseWorkflowMapping.objects.alias(queues_reached=_queues_reached()).filter(
            queues_reached__has_any_keys=supervised
        )
    return reached.order_by().values("case_id").union(_mappings_with_task_in(supervised).values("case_id"), all=True)


def _supervised_case_test(supervised: list[str] | None, *, case_ref: str) -> Q:
    """The same rule tested per row: one EXISTS over the case's mappings (every row for a superuser)."""
    if supervised is None:
        return Q()
    if not supervised:
        return Q(pk__in=[])
    in_queue_now = WorkflowTask.objects.filter(
        process_instance_id=OuterRef("process_instance_id"), queue_id__in=supervised
    )
    mappings = (
        CaseWorkflowMapping.objects.filter(case_id=OuterRef(case_ref))
        .alias(queues_reached=_queues_reached())
        .filter(Q(queues_reached__has_any_keys=supervised) | Q(Exists(in_queue_now)))
    )
    return Q(Exists(mappings))


def _reading_matches_is_cheaper(
    case_ids: QuerySet, *, wanted: int = COUNT_CAP, estimate: int | None = None, cases: int | None = None
) -> bool:
    """Whether a list should read the scope's matches rather than test cases until it has `wanted` of them (its
    capped count, or its page).

    From the planner's estimates (EXPLAINs, nothing executed): the rows the matches yield (`estimate` when the
    caller has it), and the cases a walk tests before it has found `wanted` of them (of `cases`, when given).
    """
    matches = max(_estimated_rows(case_ids) if estimate is None else estimate, 1)
    cases = _estimated_rows(Case.objects.order_by()) if cases is None else cases
    walked = min(cases, wanted * cases / matches)
    return matches * MATCH_READ_COST <= walked


def _estimated_rows(queryset: QuerySet) -> int:
    plan = json.loads(queryset.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def case_for_supervisor(*, user, case_id: int) -> Case:
    """Fetch a case of the supervisor console and check access in one call; outside the user's scope, NotFound."""
    # One case: tested directly, without a list's estimate (supervised_case_filter).
    in_scope = _supervised_case_test(_supervised_queues(user), case_ref="pk")
    case = Case.objects.select_related("assigned_to", "created_by").filter(in_scope, pk=case_id).first()
    if case is None:
        error = NotFound(f"case {case_id} not found", code="case_not_found")
        if exists_in_any_scope(Case.objects.filter(pk=case_id)):
            error.denial = {"case_id": case_id, "capability": str(Capability.SUPERVISE)}
        raise error
    return case


# --- timeline -----------------------------------------------------------------------------------------------------


class TimelineKind(TextChoices):
    CASE_EVENT = "case", "Case events"
    ROUTING = "routing", "Routing"
    TASK = "task", "Task events"


# At the same instant a case event comes before the task it starts, and a task's creation before its routing hop.
KIND_RANK = {TimelineKind.CASE_EVENT: 0, TimelineKind.TASK: 1, TimelineKind.ROUTING: 2}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor: str
    summary: str
    subject: str = ""
    event_type: str = ""
    comment: str = ""
    via_account: str = ""
    old_values: dict = field(default_factory=dict)
    new_values: dict = field(default_factory=dict)


@dataclass
class _Source:
    """One kind's entries, oldest first, and whether older ones were left unread."""

    entries: list[TimelineEntry]
    truncated: bool


def case_timeline(*, user, case_id: int, kinds: Collection[str] | None = None) -> list[TimelineEntry]:
    """The case's audit events, the routing hops of its workflows and the history of its tasks, newest first.

    Access is the supervisor console's (case_for_supervisor): the timeline names every actor on every task.
    One query per kind read, whatever the number of events. `kinds` limits the kinds read (default: all).
    """
    case = case_for_supervisor(user=user, case_id=case_id)
    wanted = set(TimelineKind.values) if not kinds else set(kinds)
    unknown = wanted - set(TimelineKind.values)
    if unknown:
        raise InvalidInput(
            f"unknown timeline kind {sorted(unknown)[0]!r}",
            fields={"kind": [f"One of: {', '.join(TimelineKind.values)}."]},
        )
    readers = {
        TimelineKind.CASE_EVENT: _case_event_source,
        TimelineKind.ROUTING: _routing_source,
        TimelineKind.TASK: _task_source,
    }
    sources = [readers[kind](case) for kind in TimelineKind.values if kind in wanted]
    return _merge(sources)


def _merge(sources: list[_Source]) -> list[TimelineEntry]:
    # A kind cut short would leave a gap its older entries belong in: keep only the span every kind covers.
    horizons = [source.entries[0].at for source in sources if source.truncated and source.entries]
    horizon = max(horizons) if horizons else None
    ranked = [
        ((entry.at, KIND_RANK[entry.kind], position), entry)
        for source in sources
        for position, entry in enumerate(source.entries)
        if horizon is None or entry.at >= horizon
    ]
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in ranked]


def _newest(rows: list) -> _Source:
    """Rows read newest first with one extra row: oldest first, and whether there was more."""
    return _Source(
        entries=list(reversed(rows[:TIMELINE_LIMIT_PER_KIND])), truncated=len(rows) > TIMELINE_LIMIT_PER_KIND
    )


def _case_event_source(case: Case) -> _Source:
    rows = (
        CaseEvent.objects.filter(case_id=case.pk)
        .order_by("-created_at", "-event_id")
        .values("event_type", "created_at", "actor__username", "old_values", "new_values")[
            : TIMELINE_LIMIT_PER_KIND + 1
        ]
    )
    source = _newest(list(rows))
    source.entries = [
        TimelineEntry(
            at=row["created_at"],
            kind=TimelineKind.CASE_EVENT,
            actor=row["actor__username"] or SYSTEM_ACTOR,
            summary=_case_event_summary(row["event_type"], row["old_values"] or {}, row["new_values"] or {}),
            subject=case.case_number,
            event_type=row["event_type"],
            old_values=row["old_values"] or {},
            new_values=row["new_values"] or {},
        )
        for row in source.entries
    ]
    return source


def _case_event_summary(event_type: str, old: dict, new: dict) -> str:
    if event_type == "OPENED":
        return f"case opened: {new['title']}" if new.get("title") else "case opened"
    if event_type == "CLOSED":
        return "case closed"
    changes = ", ".join(f"{key} {old.get(key)} → {value}" for key, value in new.items())
    label = event_type.replace("_", " ").lower()
    return f"{label}: {changes}" if changes else label


def _routing_source(case: Case) -> _Source:
    mappings = (
        CaseWorkflowMapping.objects.filter(case_id=case.pk)
        .order_by("mapping_id")
        .values("workflow_type", "routing_history", "created_at")
    )
    hops = []
    for mapping in mappings:
        for hop in mapping["routing_history"] or []:
            hops.append(_routing_entry(hop, workflow_type=mapping["workflow_type"], fallback_at=mapping["created_at"]))
    hops.sort(key=lambda entry: entry.at)
    return _newest(list(reversed(hops)))


def _routing_entry(hop: dict, *, workflow_type: str, fallback_at: datetime) -> TimelineEntry:
    from_queue, to_queue = hop.get("from_queue"), hop.get("to_queue")
    if from_queue is None:
        summary = f"opened in {to_queue}"
    elif from_queue == to_queue:
        summary = f"stayed in {to_queue}"
    else:
        summary = f"moved from {from_queue} to {to_queue}"
    return TimelineEntry(
        at=_parsed_time(hop.get("at")) or fallback_at,
        kind=TimelineKind.ROUTING,
        actor=hop.get("by") or SYSTEM_ACTOR,
        summary=summary,
        subject=workflow_type,
        comment=hop.get("reason") or "",
        old_values={"queue": from_queue},
        new_values={"queue": to_queue},
    )


def _parsed_time(value) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _task_source(case: Case) -> _Source:
    rows = (
        TaskHistory.objects.filter(task__process_instance__case_mapping__case_id=case.pk)
        .order_by("-created_at", "-event_id")
        .values(
            "event_type",
            "created_at",
            "actor__username",
            "via_account__username",
            "old_values",
            "new_values",
            "comment",
            "task_id",
            "task__name",
        )[: TIMELINE_LIMIT_PER_KIND + 1]
    )
    source = _newest(list(rows))
    source.entries = [
        TimelineEntry(
            at=row["created_at"],
            kind=TimelineKind.TASK,
            actor=row["actor__username"] or SYSTEM_ACTOR,
            summary=_task_summary(
                row["event_type"],
                row["old_values"] or {},
                row["new_values"] or {},
                actor=row["actor__username"] or SYSTEM_ACTOR,
            ),
            subject=f"{row['task__name']} (#{row['task_id']})",
            event_type=row["event_type"],
            comment=row["comment"],
            via_account=row["via_account__username"] or "",
            old_values=row["old_values"] or {},
            new_values=row["new_values"] or {},
        )
        for row in source.entries
    ]
    return source


def _task_summary(event_type: str, old: dict, new: dict, *, actor: str) -> str:
    match event_type:
        case TaskEventType.CREATED:
            return f"created in {new.get('queue')}"
        case TaskEventType.CLAIMED:
            return f"claimed by {new.get('assignee') or actor}"
        case TaskEventType.RELEASED:
            held = old.get("assignee")
            return f"released by {actor}" + (f" (held by {held})" if held and held != actor else "")
        case TaskEventType.COMPLETED:
            return f"completed by {actor}"
        case TaskEventType.REASSIGNED:
            return f"reassigned from {old.get('assignee') or 'nobody'} to {new.get('assignee')}"
        case TaskEventType.DELEGATED:
            return f"delegated by {old.get('assignee')} to {new.get('assignee')}"
        case TaskEventType.RESOLVED:
            return f"resolved by {old.get('assignee') or actor}, back to {new.get('assignee')}"
        case TaskEventType.MOVED:
            return f"moved from {old.get('queue')} to {new.get('queue')}"
        case TaskEventType.ESCALATED:
            return _escalation_summary(old, new)
        case TaskEventType.PRIORITY_CHANGED:
            return f"priority changed from {old.get('priority')} to {new.get('priority')}"
        case TaskEventType.CANCELLED:
            return "cancelled"
        case TaskEventType.COMMENTED:
            return f"comment by {actor}"
    return event_type.replace("_", " ").lower()


def _escalation_summary(old: dict, new: dict) -> str:
    if "escalation_level" not in new:
        return "closed as escalated"  # a boundary timer ended the task; the engine opened the escalation's task
    parts = [f"escalated to level {new['escalation_level']}"]
    if old.get("queue") and new.get("queue") and old["queue"] != new["queue"]:
        parts.append(f"moved from {old['queue']} to {new['queue']}")
    if old.get("priority") is not None and old.get("priority") != new.get("priority"):
        parts.append(f"priority {old['priority']} → {new.get('priority')}")
    return ", ".join(parts)
