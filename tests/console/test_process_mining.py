"""Process mining (tasks/console/mining.py): its figures equal those computed directly from the task rows, the
refresh picks up new work, and the page shows the overlay to supervisors only."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from entitlements.row_scope import system_scope
from tasks.bpmn.mining_overlay import flow_graph
from tasks.console.mining import PERIOD_DAYS, process_mining
from tasks.models import ProcessInstance, ProcessStatus, TaskStatus, WorkflowDefinition, WorkflowTask
from tasks.sla.maintenance import refresh_dashboards

pytestmark = pytest.mark.django_db

# start -> review -> check -> ok? -(yes)-> end, -(no)-> review: a loop, so rework can happen.
LOOP_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="test">
  <bpmn:process id="mining_loop" name="Mining loop" isExecutable="true">
    <bpmn:startEvent id="start" name="Start"/>
    <bpmn:userTask id="review" name="Review"/>
    <bpmn:userTask id="check" name="Check"/>
    <bpmn:exclusiveGateway id="ok" name="OK?" default="f_yes"/>
    <bpmn:endEvent id="end" name="Done"/>
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f_review" sourceRef="review" targetRef="check"/>
    <bpmn:sequenceFlow id="f_check" sourceRef="check" targetRef="ok"/>
    <bpmn:sequenceFlow id="f_yes" name="Yes" sourceRef="ok" targetRef="end"/>
    <bpmn:sequenceFlow id="f_no" name="No" sourceRef="ok" targetRef="review"/>
  </bpmn:process>
</bpmn:definitions>
"""

M = timedelta(minutes=1)


@dataclass(frozen=True)
class Step:
    key: str
    created: timedelta
    claimed: timedelta | None
    completed: timedelta | None


def noon(days_ago: int) -> datetime:
    today = timezone.now().astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days_ago), time(12), tzinfo=UTC)


def an_instance(definition, *, start: datetime, steps: list[Step], ended: timedelta | None, make_task):
    with system_scope():
        instance = ProcessInstance.objects.create(
            definition=definition,
            business_key=f"MINE-{start:%j%H%M%S}-{ProcessInstance.objects.count()}",
            status=ProcessStatus.COMPLETED if ended is not None else ProcessStatus.RUNNING,
            started_at=start,
            ended_at=start + ended if ended is not None else None,
        )
    for step in steps:
        task = make_task("intake", step.key.title(), process_instance=instance, task_definition_key=step.key)
        status = TaskStatus.COMPLETED if step.completed is not None else TaskStatus.CLAIMED if step.claimed else "OPEN"
        with system_scope():
            WorkflowTask.objects.filter(pk=task.pk).update(
                created_at=start + step.created,
                claimed_at=start + step.claimed if step.claimed is not None else None,
                completed_at=start + step.completed if step.completed is not None else None,
                status=status,
            )
    return instance


@pytest.fixture
def loop_definition(supervisor_sam):
    return WorkflowDefinition.objects.create(
        process_key="mining_loop", version=1, name="Mining loop", bpmn_xml=LOOP_BPMN, deployed_by=supervisor_sam
    )


@pytest.fixture
def history(loop_definition, make_task):
    """Three completed instances (one reworks review once), one running, one completed 40 days ago."""
    d = loop_definition
    an_instance(
        d,
        start=noon(3),
        steps=[Step("review", 0 * M, 10 * M, 40 * M), Step("check", 40 * M, 60 * M, 120 * M)],
        ended=120 * M,
        make_task=make_task,
    )
    an_instance(
        d,
        start=noon(2),
        steps=[
            Step("review", 0 * M, 5 * M, 20 * M),
            Step("check", 20 * M, 50 * M, 70 * M),
            Step("review", 70 * M, 90 * M, 120 * M),
            Step("check", 120 * M, None, 180 * M),
        ],
        ended=180 * M,
        make_task=make_task,
    )
    an_instance(
        d,
        start=noon(1),
        steps=[Step("review", 0 * M, None, 60 * M), Step("check", 60 * M, 65 * M, 95 * M)],
        ended=95 * M,
        make_task=make_task,
    )
    an_instance(
        d,
        start=noon(1),
        steps=[Step("review", 0 * M, 3 * M, 33 * M), Step("check", 33 * M, None, None)],
        ended=None,
        make_task=make_task,
    )
    an_instance(
        d,
        start=noon(40),
        steps=[Step("review", 0 * M, 1 * M, 500 * M), Step("check", 500 * M, 501 * M, 900 * M)],
        ended=900 * M,
        make_task=make_task,
    )
    refresh_dashboards()
    return d


# --- the figures as computed directly from the task rows, with the same definitions -------------------------------


def percentile(values: list[float], share: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def direct_figures(definition, *, days: int) -> dict:
    since = timezone.now().astimezone(UTC).date() - timedelta(days=days - 1)

    def day(moment):
        return moment.astimezone(UTC).date()

    with system_scope():
        tasks = list(
            WorkflowTask.objects.filter(process_instance__definition=definition)
            .exclude(task_definition_key="")
            .order_by("process_instance_id", "created_at", "pk")
            .values(
                "process_instance_id",
                "task_definition_key",
                "status",
                "created_at",
                "claimed_at",
                "completed_at",
            )
        )
        instances = {
            i.pk: i for i in ProcessInstance.objects.filter(definition=definition).order_by("process_instance_id")
        }
    by_instance = defaultdict(list)
    for task in tasks:
        by_instance[task["process_instance_id"]].append(task)

    activities = defaultdict(lambda: {"completed": 0, "reentries": 0, "total": [], "active": [], "wait": []})
    moves = Counter()
    variants = defaultdict(list)
    for instance_id, rows in by_instance.items():
        seen = Counter()
        previous = ""
        for row in rows:
            key = row["task_definition_key"]
            seen[key] += 1
            if day(row["created_at"]) >= since:
                moves[(previous, key)] += 1
            previous = key
            if row["status"] != TaskStatus.COMPLETED or day(row["completed_at"]) < since:
                continue
            figures = activities[key]
            figures["completed"] += 1
            figures["reentries"] += seen[key] > 1
            figures["total"].append((row["completed_at"] - row["created_at"]).total_seconds())
            figures["active"].append((row["completed_at"] - (row["claimed_at"] or row["created_at"])).total_seconds())
            if row["claimed_at"]:
                figures["wait"].append((row["claimed_at"] - row["created_at"]).total_seconds())
        instance = instances[instance_id]
        if instance.status == ProcessStatus.COMPLETED and day(instance.ended_at) >= since:
            moves[(previous, "")] += 1
            path = tuple(row["task_definition_key"] for row in rows)
            variants[path].append((instance.ended_at - instance.started_at).total_seconds())
    return {
        "activities": {
            key: (
                f["completed"],
                f["reentries"],
                *(
                    (statistics.median(f[m]) if f[m] else None, percentile(f[m], 0.9))
                    for m in ("total", "active", "wait")
                ),
            )
            for key, f in activities.items()
        },
        "moves": dict(moves),
        "variants": {path: (len(d), statistics.median(d)) for path, d in variants.items()},
    }


def mined_figures(mining) -> dict:
    return {
        "activities": {
            a.key: (
                a.completed,
                a.reentries,
                (a.median_total_seconds, a.p90_total_seconds),
                (a.median_active_seconds, a.p90_active_seconds),
                (a.median_wait_seconds, a.p90_wait_seconds),
            )
            for a in mining.activities
            if a.completed
        },
        "moves": {(t.source_key, t.target_key): t.taken for t in mining.transitions},
        "variants": {v.keys: (v.instances, v.median_seconds) for v in mining.variants},
    }


def approx(figures: dict) -> dict:
    """Floats to the millisecond: PostgreSQL's epoch arithmetic and Python's may differ in the last bits."""

    def clean(value):
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, tuple):
            return tuple(clean(v) for v in value)
        return value

    return {section: {k: clean(v) for k, v in rows.items()} for section, rows in figures.items()}


@pytest.mark.parametrize("days", [7, 30, 90])
def test_mined_figures_equal_those_computed_directly_from_the_task_rows(history, days):
    mining = process_mining(definition=history, days=days)

    assert approx(mined_figures(mining)) == approx(direct_figures(history, days=days))


def test_the_rework_loop_the_gateway_branches_and_the_variants_are_what_the_history_says(history):
    mining = process_mining(definition=history, days=30)

    review = next(a for a in mining.activities if a.key == "review")
    assert (review.completed, review.reentries) == (5, 1)
    assert mining.flows_taken == {"f_start": 4, "f_review": 5, "f_check": 4, "f_no": 1, "f_yes": 3}
    assert [(v.keys, v.instances) for v in mining.variants] == [
        (("review", "check"), 2),
        (("review", "check", "review", "check"), 1),
    ]
    assert mining.variants[0].median_seconds == (95 + 120) / 2 * 60
    assert round(mining.variants[0].share_pct, 1) == 66.7
    # minutes at check: 80, 50, 60, 35 (p90 74); at review: 40, 20, 50, 60, 33 (p90 56)
    assert mining.bottleneck == "check"
    assert not mining.unplaced


def test_the_period_leaves_out_older_work_and_the_views_keep_the_longest_period_only(history, make_task):
    an_instance(
        history,
        start=noon(max(PERIOD_DAYS) + 10),
        steps=[Step("review", 0 * M, 1 * M, 2 * M), Step("check", 2 * M, 3 * M, 4 * M)],
        ended=4 * M,
        make_task=make_task,
    )
    refresh_dashboards()

    assert len(process_mining(definition=history, days=30).variants) == 2
    longest = process_mining(definition=history, days=max(PERIOD_DAYS))
    assert sum(v.instances for v in longest.variants) == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(day) FROM flowable.mv_mining_activity_daily WHERE workflow_id = %s", [history.pk])
        assert cursor.fetchone()[0] == noon(40).date()


def test_new_history_shows_after_the_next_refresh_and_not_before(history, make_task):
    before = process_mining(definition=history, days=7)
    an_instance(
        history,
        start=noon(0) - timedelta(hours=6),
        steps=[Step("review", 0 * M, 1 * M, 2 * M), Step("check", 2 * M, 3 * M, 4 * M)],
        ended=4 * M,
        make_task=make_task,
    )

    assert process_mining(definition=history, days=7).completed_instances == before.completed_instances

    refresh_dashboards()

    after = process_mining(definition=history, days=7)
    assert after.completed_instances == before.completed_instances + 1
    assert approx(mined_figures(after)) == approx(direct_figures(history, days=7))


def test_a_move_with_two_paths_on_the_diagram_is_not_placed():
    # review -> check directly, or through a second gateway: two paths.
    graph = flow_graph(
        bpmn_xml=LOOP_BPMN.replace(
            '<bpmn:sequenceFlow id="f_review"',
            '<bpmn:exclusiveGateway id="g2"/>\n'
            '    <bpmn:sequenceFlow id="f_r2" sourceRef="review" targetRef="g2"/>\n'
            '    <bpmn:sequenceFlow id="f_g2" sourceRef="g2" targetRef="check"/>\n'
            '    <bpmn:sequenceFlow id="f_review"',
        )
    )

    assert graph.path("review", "check") is None
    assert graph.path("check", "review") == ["f_check", "f_no"]
    assert graph.path("check", "") == ["f_check", "f_yes"]
    assert graph.path("", "review") == ["f_start"]
    assert graph.path("", "check") is None  # every path from the start passes review


def test_the_overlay_colours_labels_and_marks_the_bottleneck(history):
    svg = process_mining(definition=history, days=30, colour_by="duration").svg

    assert 'data-bottleneck="true"' in svg
    assert 'class="flow-count"' in svg and ">5</text>" in svg
    assert "Bottleneck</title>" in svg


def test_the_page_shows_a_supervisor_the_overlay_and_the_variants(client, supervisor_sam, history):
    client.force_login(supervisor_sam)

    response = client.get(f"/admin/process-mining/{history.pk}/?days=30&colour=duration")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="mining-diagram"' in body and "data-bottleneck" in body
    assert 'data-variant="review check review check"' in body
    assert "Review → Check → Review → Check" in body
    index = client.get("/admin/process-mining/")
    assert f"/admin/process-mining/{history.pk}/" in index.content.decode()


def test_the_page_is_refused_to_a_caseworker(client, caseworker_alice, history):
    client.force_login(caseworker_alice)

    response = client.get(f"/admin/process-mining/{history.pk}/")

    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/login/" in response["Location"]
    assert client.get("/admin/process-mining/").status_code in (302, 403)


def test_the_page_is_refused_to_staff_who_supervise_no_queue(client, caseworker_alice, history):
    caseworker_alice.is_staff = True
    caseworker_alice.save(update_fields=["is_staff"])
    client.force_login(caseworker_alice)

    assert client.get(f"/admin/process-mining/{history.pk}/").status_code == 403


MINING_PAGE_QUERY_BUDGET = 13  # with the console header's unread notifications


def test_the_page_reads_a_bounded_number_of_queries_whatever_the_history(
    client, supervisor_sam, history, make_task, django_assert_max_num_queries
):
    for index in range(10):
        an_instance(
            history,
            start=noon(index % 5),
            steps=[Step("review", 0 * M, 1 * M, 2 * M), Step("check", 2 * M, 3 * M, 4 * M)],
            ended=4 * M,
            make_task=make_task,
        )
    refresh_dashboards()
    client.force_login(supervisor_sam)

    with django_assert_max_num_queries(MINING_PAGE_QUERY_BUDGET):
        response = client.get(f"/admin/process-mining/{history.pk}/")

    assert response.status_code == 200


def test_a_move_through_a_boundary_event_of_the_demo_workflow_is_placed_on_its_flow():
    from tests.pages.conftest import DEMO_BPMN

    graph = flow_graph(bpmn_xml=DEMO_BPMN.read_text())

    assert graph.path("triage", "escalated_triage") == ["flow_to_escalated_triage"]
    assert graph.path("triage", "fraud_investigation") == [
        "flow_triage_to_done",
        "flow_to_allegation_type",
        "flow_fraud",
    ]
    assert graph.path("misconduct_review", "closure") == [
        "flow_misconduct_to_done",
        "flow_to_recommend_action",
        "flow_no_action",
        "flow_to_closure",
    ]


def test_the_page_falls_back_to_its_defaults_on_unknown_choices_and_404s_an_unknown_definition(
    client, supervisor_sam, history
):
    client.force_login(supervisor_sam)

    response = client.get(f"/admin/process-mining/{history.pk}/?days=abc&colour=%3Cscript%3E")

    assert response.status_code == 200
    assert response.context["mining"].days == 30 and response.context["mining"].colour_by == "frequency"
    assert client.get("/admin/process-mining/999999999/").status_code == 404


def test_archived_tasks_still_count(history):
    from tasks.models import ArchivedTask
    from tasks.sla.archive import completed_tasks_archive

    before = approx(mined_figures(process_mining(definition=history, days=90)))

    completed_tasks_archive(older_than_days=30)  # the instance completed 40 days ago
    refresh_dashboards()

    with system_scope():
        assert ArchivedTask.objects.filter(process_instance_id__in=history.instances.values("pk")).count() == 2
    assert approx(mined_figures(process_mining(definition=history, days=90))) == before
