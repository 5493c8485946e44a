"""The demo OneCMS workflow walked end to end, with the state stored as JSON between every step."""

from datetime import timedelta

from tasks.bpmn import engine

from .instances import complete, ready_names, ready_task, start


def test_starting_a_case_opens_intake_review_in_the_intake_queue(demo_definition, t0):
    run = start(demo_definition.spec, t0, case_number="CASE-2026-000001")

    task = ready_task(run, "Intake review")
    assert (task.queue_name, task.priority, task.sla_hours, task.task_definition_key) == (
        "intake",
        50,
        24,
        "intake_review",
    )
    assert run.opened_task_ids == [task.engine_task_id]
    assert run.variables == {"case_number": "CASE-2026-000001"}
    assert not run.completed


def test_a_fraud_case_goes_through_fraud_investigation_and_legal_review(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0, case_number="CASE-2026-000002")
    hops = []

    for name, variables in [
        ("Intake review", {"received_on": "2026-03-01", "received_via": "EMAIL"}),
        ("Triage", {"allegation_type": "FRAUD"}),
        ("Fraud investigation", {"recommend_action": True, "findings": "Invoices were forged."}),
        ("Legal review", {"legal_opinion": "Refer.", "refer_to_prosecutor": True}),
        ("Closure", {"closure_reason": "REFERRED"}),
    ]:
        hops.append((name, ready_task(run, name).queue_name))
        run = complete(spec, run, name, t0 + timedelta(hours=1), **variables)

    assert hops == [
        ("Intake review", "intake"),
        ("Triage", "triage"),
        ("Fraud investigation", "fraud-investigation"),
        ("Legal review", "legal-review"),
        ("Closure", "triage"),
    ]
    assert run.completed
    assert run.ready_user_tasks == []
    assert run.variables["allegation_type"] == "FRAUD"
    assert run.variables["closure_reason"] == "REFERRED"
    assert run.next_timer_due_at is None


def test_fraud_investigation_requires_the_fraud_skill(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    run = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="WEB")
    run = complete(spec, run, "Triage", t0, allegation_type="FRAUD")

    assert ready_task(run, "Fraud investigation").required_skills == ["fraud"]


def test_a_misconduct_case_without_recommended_action_skips_legal_review(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    run = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="PHONE")
    run = complete(spec, run, "Triage", t0, allegation_type="MISCONDUCT")
    assert [(task.name, task.queue_name) for task in run.ready_user_tasks] == [("Misconduct review", "triage")]

    run = complete(spec, run, "Misconduct review", t0, recommend_action=False, findings="No evidence.")
    assert ready_names(run) == ["Closure"]

    run = complete(spec, run, "Closure", t0, closure_reason="NO_CASE_TO_ANSWER")
    assert run.completed


def test_any_other_allegation_type_takes_the_misconduct_path(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    run = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="LETTER")
    run = complete(spec, run, "Triage", t0, allegation_type="CONFLICT_OF_INTEREST")

    assert ready_names(run) == ["Misconduct review"]


def test_a_misconduct_case_with_recommended_action_goes_to_legal_review(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    run = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="LETTER")
    run = complete(spec, run, "Triage", t0, allegation_type="MISCONDUCT")
    run = complete(spec, run, "Misconduct review", t0, recommend_action=True)

    assert [(task.name, task.queue_name) for task in run.ready_user_tasks] == [("Legal review", "legal-review")]


def test_completing_a_task_closes_nothing_else_and_opens_the_next(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    run = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")

    assert run.closed_task_ids == []
    assert run.opened_task_ids == [ready_task(run, "Triage").engine_task_id]


def test_cancelling_a_case_closes_its_open_task(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    open_id = ready_task(run, "Intake review").engine_task_id

    cancelled = engine.cancel(spec=spec, state=run.state)

    assert cancelled.closed_task_ids == [open_id]
    assert cancelled.ready_user_tasks == []
    assert not cancelled.completed
