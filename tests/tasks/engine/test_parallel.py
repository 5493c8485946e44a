"""A parallel split opens both branches at once; the join fires once, after both are done."""

from .instances import complete, ready_names, start


def test_a_parallel_split_opens_both_reviews_in_their_queues(parallel_definition, t0):
    run = start(parallel_definition.spec, t0, join_count=0)

    assert sorted((t.name, t.queue_name) for t in run.ready_user_tasks) == [
        ("Finance check", "fraud-investigation"),
        ("Legal check", "legal-review"),
    ]
    assert len(run.opened_task_ids) == 2


def test_the_join_waits_for_the_second_branch(parallel_definition, t0):
    spec = parallel_definition.spec
    run = start(spec, t0, join_count=0)

    run = complete(spec, run, "Legal check", t0, legal_ok=True)

    assert ready_names(run) == ["Finance check"]
    assert run.opened_task_ids == run.closed_task_ids == []


def test_the_join_fires_once_when_both_branches_are_done(parallel_definition, t0):
    spec = parallel_definition.spec
    run = start(spec, t0, join_count=0)

    run = complete(spec, run, "Finance check", t0, finance_ok=True)
    run = complete(spec, run, "Legal check", t0, legal_ok=True)

    assert ready_names(run) == ["Decide"]
    assert run.variables["join_count"] == 1
    assert {"finance_ok", "legal_ok"} <= set(run.variables)


def test_the_process_ends_after_the_joined_task(parallel_definition, t0):
    spec = parallel_definition.spec
    run = start(spec, t0, join_count=0)
    for name in ("Legal check", "Finance check", "Decide"):
        run = complete(spec, run, name, t0)

    assert run.completed
    assert run.variables["join_count"] == 1
