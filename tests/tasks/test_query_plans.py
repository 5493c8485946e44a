"""The claim and visibility queries walk the task table's indexes instead of scanning or sorting the backlog."""

import json
import re

import pytest
from django.db import connection

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks.selectors import tasks_visible_to
from tests.tasks.test_concurrency import open_tasks_in_new_queues

pytestmark = pytest.mark.django_db

BACKLOG = 150_000
QUEUES = ["intake", "triage", "fraud-investigation", "legal-review", "escalations"]


@pytest.fixture
def big_backlog(demo_org):
    """A backlog spread over many queues, as in production: any one user's queues hold a small part of it."""
    open_tasks_in_new_queues(BACKLOG, [f"region-{n:03d}" for n in range(100)], existing_queues=QUEUES)


def plan_of(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return cursor.fetchone()[0][0]["Plan"]


def nodes(plan, stop_at=()):
    yield plan
    for child in plan.get("Plans", []):
        if child["Node Type"] in stop_at:
            continue
        yield from nodes(child, stop_at)


def scans_tasks(node):
    return node.get("Relation Name") == "workflow_tasks"


def claim_statement(queues="%(queues)s", skills="%(skills)s", user="%(user)s"):
    """The statement that finds the candidates in flowable.claim_next_task, as deployed, parameters in place."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'claim_next_task'")
        source = cursor.fetchone()[0]
    statement = re.search(r"(SELECT array_agg\(.*?\) c)\s+INTO v_queue_names", source, re.S).group(1)
    return (
        statement.replace("p_queues", f"{queues}::text[]")
        .replace("p_skills", f"{skills}::text[]")
        .replace("p_user_id", f"{user}::bigint")
        .replace("p_via_account_id", "NULL::bigint")
    )


def generic_plan_of_claim_statement(params):
    """The plan PL/pgSQL settles on after a session's first calls: one plan for any queues and skills."""
    with connection.cursor() as cursor:
        cursor.execute(
            "PREPARE claim_candidates(text[], text[], bigint) AS "
            + claim_statement(queues="$1", skills="$2", user="$3")
        )
        try:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(
                "EXPLAIN (FORMAT JSON) EXECUTE claim_candidates(%s, %s, %s)",
                [params["queues"], params["skills"], params["user"]],
            )
            return cursor.fetchone()[0][0]["Plan"]
        finally:
            cursor.execute("DEALLOCATE claim_candidates")


def assert_probes_each_queue_in_index_order(plan):
    every = list(nodes(plan))
    assert not [n for n in every if n["Node Type"] == "Seq Scan" and scans_tasks(n)], json.dumps(plan, indent=1)
    assert any(scans_tasks(n) and "Index" in n["Node Type"] for n in every)
    for node in every:
        if "Sort" in node["Node Type"]:
            # Sorting the few per-queue candidates is fine; a sort that reaches the task table without a LIMIT
            # in between would be sorting the backlog.
            below = list(nodes(node, stop_at=("Limit",)))
            assert not any(scans_tasks(n) for n in below), json.dumps(plan, indent=1)


def test_claim_next_uses_an_index_and_sorts_no_backlog(big_backlog):
    alice = User.objects.get(username="alice")
    assert_probes_each_queue_in_index_order(
        plan_of(claim_statement(), {"queues": QUEUES, "skills": ["fraud"], "user": alice.pk})
    )


@pytest.fixture
def team_sized_queues(demo_org):
    """Twenty queues of 250 OPEN tasks, none needing a skill: the usual size of a team's queue."""
    names = [f"team-{n:02d}" for n in range(20)]
    open_tasks_in_new_queues(5_000, names)
    return names


@pytest.mark.parametrize("skills", [[], ["fraud"]])
def test_claim_next_takes_the_head_of_each_small_queue_without_sorting_it(team_sized_queues, skills):
    # With no task needing a skill ANALYZE keeps no element statistics for required_skills; the skill filter
    # must not then look so selective that reading and sorting the whole queue seems cheaper than its index.
    alice = User.objects.get(username="alice")
    params = {"queues": team_sized_queues, "skills": skills, "user": alice.pk}
    assert_probes_each_queue_in_index_order(plan_of(claim_statement(), params))
    assert_probes_each_queue_in_index_order(generic_plan_of_claim_statement(params))


def express_lanes_out_of_credit(queues, threshold=90):
    """Express lanes on the queues, their credit spent: claims read each queue's range below the threshold first."""
    WorkflowQueue.objects.filter(queue_name__in=queues).update(
        express_threshold=threshold, express_share_percent=25, express_credit=0
    )


def assert_claim_index_probed_below(plan):
    """The claim index is read from the express threshold down (an index bound, not a filter over the lane)."""
    probes = [n for n in nodes(plan) if scans_tasks(n) and n.get("Index Name") == "idx_workflow_tasks_claim_open"]
    assert probes, json.dumps(plan, indent=1)
    assert any("effective_priority <" in n.get("Index Cond", "") for n in probes), json.dumps(plan, indent=1)


def test_claim_next_through_a_spent_express_lane_still_probes_the_index_without_sorting(big_backlog):
    express_lanes_out_of_credit(QUEUES)
    alice = User.objects.get(username="alice")
    params = {"queues": QUEUES, "skills": ["fraud"], "user": alice.pk}

    for plan in (plan_of(claim_statement(), params), generic_plan_of_claim_statement(params)):
        assert_probes_each_queue_in_index_order(plan)
        assert_claim_index_probed_below(plan)


def locking_probe_below_the_lane() -> str:
    """The statement by which flowable.claim_next_task locks a queue's best task below its express threshold when
    another claim took the head it read, as deployed, parameters in place."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'claim_next_task'")
        source = cursor.fetchone()[0]
    statement = re.search(
        r"SELECT t\.task_id, t\.effective_priority\s+INTO v_task_id, v_effective\s+"
        r"(FROM flowable\.workflow_tasks t\s+WHERE t\.queue_name = v_queue_names\[i\]\s+"
        r"AND t\.effective_priority < v_bounds\[i\].*?SKIP LOCKED)",
        source,
        re.S,
    ).group(1)
    return "SELECT t.task_id " + (
        statement.replace("v_queue_names[i]", "%(queue)s::text")
        .replace("v_bounds[i]", "%(bound)s::integer")
        .replace("p_skills", "%(skills)s::text[]")
    )


@pytest.mark.parametrize("bound", [2147483647, 90], ids=["no lane", "lane out of credit"])
def test_claim_next_locks_a_task_by_an_index_probe_without_sorting(big_backlog, bound):
    plan = plan_of(locking_probe_below_the_lane(), {"queue": QUEUES[0], "bound": bound, "skills": ["fraud"]})
    assert_probes_each_queue_in_index_order(plan)
    assert_claim_index_probed_below(plan)


def routing_probe_of_a_queue_without_a_head() -> str:
    """The statement by which flowable.claim_next_routing tells, for a queue with no task the claimer may take,
    whether it has OPEN tasks at all (and which skills they need), as deployed, parameters in place."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'claim_next_routing'")
        source = cursor.fetchone()[0]
    statement = re.search(
        r"LEFT JOIN LATERAL \(\s+(SELECT t\.required_skills.*?LIMIT 1)\s+\) h ON true", source, re.S
    ).group(1)
    return statement.replace("u.queue_name", "%(queue)s::text")


def test_claim_next_explains_a_queue_without_a_head_by_an_index_probe_without_sorting(big_backlog):
    plan = plan_of(routing_probe_of_a_queue_without_a_head(), {"queue": QUEUES[0]})
    assert_probes_each_queue_in_index_order(plan)
    assert [n for n in nodes(plan) if n.get("Index Name") == "idx_workflow_tasks_claim_open"], json.dumps(plan)


def test_task_visibility_uses_the_queue_index(big_backlog):
    alice = User.objects.get(username="alice")
    queryset = tasks_visible_to(user=alice).filter(status="OPEN").order_by("-priority", "created_at")[:50]
    sql, params = queryset.query.sql_with_params()
    every = list(nodes(plan_of(sql, params)))
    assert not [n for n in every if n["Node Type"] == "Seq Scan" and scans_tasks(n)]
    assert any(n.get("Index Name", "").startswith("idx_workflow_tasks") for n in every)


def test_history_by_integration_account_uses_the_partial_index():
    """Claims without an integration account leave the index alone; lookups by account (a user's deletion is
    refused while history names it) still use it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'flowable' AND indexname = 'task_history_via_account'"
        )
        (definition,) = cursor.fetchone()
        assert definition.endswith("WHERE (via_account_id IS NOT NULL)")
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'flowable' AND tablename = 'task_history' "
            "AND indexdef LIKE '%%(via_account_id)%%'"
        )
        assert cursor.fetchone() == (1,)  # the former full index is gone
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'flowable.task_history_via_account'::regclass"
        )
        assert cursor.fetchone() == (True,)
        cursor.execute("SET LOCAL enable_seqscan = off")
        # The history is partitioned by month: each partition has its own copy of the index.
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'flowable.task_history_via_account'::regclass"
        )
        copies = {name for (name,) in cursor.fetchall()}
    plan = plan_of("SELECT 1 FROM flowable.task_history WHERE via_account_id = %s LIMIT 1", [1])
    used = {node["Index Name"] for node in nodes(plan) if "Index Name" in node}
    assert used and used <= copies


def test_the_history_index_is_built_without_blocking_claims():
    """Claims append history: the migration builds and drops the index CONCURRENTLY, outside a transaction."""
    import importlib

    migration = importlib.import_module("tasks.migrations.0017_history_via_account_partial_index")
    assert migration.Migration.atomic is False
    statements = migration.FORWARD + migration.BACKWARD
    assert all(" CONCURRENTLY " in statement for statement in statements)
    assert "CREATE" in migration.FORWARD[0] and "DROP" in migration.FORWARD[1]  # never without an index


def task_table_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'flowable' AND tablename = 'workflow_tasks'"
        )
        return dict(cursor.fetchall())


def test_a_task_without_an_owner_has_no_entry_in_an_owner_index_and_lookups_by_owner_use_it():
    """A claim writes an entry in every index whose predicate the claimed row meets: the owner index holds the
    delegated tasks only, and every lookup by owner (erasure, export, delegations) still finds them through it."""
    owner_indexes = {name: d for name, d in task_table_indexes().items() if "(owner_id)" in d}
    assert list(owner_indexes) == ["idx_workflow_tasks_owner"]
    assert owner_indexes["idx_workflow_tasks_owner"].endswith("WHERE (owner_id IS NOT NULL)")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = plan_of("SELECT task_id FROM flowable.workflow_tasks WHERE owner_id = %s", [1])
    assert any(node.get("Index Name") == "idx_workflow_tasks_owner" for node in nodes(plan)), json.dumps(plan)


def test_the_task_table_leaves_room_on_each_page_for_a_claimed_version():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'flowable.workflow_tasks'::regclass")
        (options,) = cursor.fetchone()
    assert "fillfactor=90" in options


def test_the_task_indexes_are_built_and_dropped_without_blocking_claims():
    import importlib

    migration = importlib.import_module("tasks.migrations.0028_claim_next_locks_one_task")
    assert migration.Migration.atomic is False
    statements = migration.INDEXES_FORWARD + migration.INDEXES_BACKWARD
    builds_and_drops = [s for s in statements if s.startswith(("CREATE", "DROP"))]
    assert all(" CONCURRENTLY " in statement for statement in builds_and_drops)
    assert all(s.startswith("ALTER INDEX") and " RENAME TO " in s for s in set(statements) - set(builds_and_drops))
    # Each partial index exists before the full one it replaces goes.
    assert [s.split()[0] for s in migration.INDEXES_FORWARD[:4]] == ["CREATE", "DROP", "CREATE", "DROP"]
