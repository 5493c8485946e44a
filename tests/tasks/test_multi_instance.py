"""Multi-instance user tasks through the services: one queue task per instance, each claimable on its own and carrying
its element variable; the process goes on when every instance (or the completion condition) is done."""

import pytest

from tasks.bpmn import engine
from tasks.bpmn.workflows import definition_deploy, process_start
from tasks.models import ProcessInstance, WorkflowTask
from tasks.services import task_claim, task_complete
from tests.tasks.engine.documents import bpmn_document, linear_process

from .engine.documents import MULTI_INSTANCE_FILE

pytestmark = pytest.mark.django_db


def open_tasks(instance, key):
    return list(
        WorkflowTask.objects.filter(
            process_instance=instance, task_definition_key=key, status__in=["OPEN", "CLAIMED"]
        ).order_by("task_id")
    )


def work(user, task, variables):
    task_claim(user=user, task_id=task.pk)
    task_complete(user=user, task_id=task.pk, variables=variables)


def start(supervisor, alice, *, documents, signers=3):
    definition_deploy(user=supervisor, bpmn_xml=MULTI_INSTANCE_FILE.read_text())
    return process_start(
        user=alice,
        process_key="multi_instance_review",
        business_key="MI-1",
        variables={"documents": documents, "signers": signers},
    )


def test_a_parallel_collection_makes_one_claimable_task_per_item_with_its_element_variable(
    supervisor_sam, caseworker_alice, legal_reviewer_carol
):
    instance = start(supervisor_sam, caseworker_alice, documents=["a.pdf", "b.pdf", "c.pdf"])

    reviews = open_tasks(instance, "review_document")
    assert [t.variables for t in reviews] == [
        {"loopCounter": 0, "document": "a.pdf"},
        {"loopCounter": 1, "document": "b.pdf"},
        {"loopCounter": 2, "document": "c.pdf"},
    ]
    assert {t.queue_id for t in reviews} == {"triage"}
    # Each instance is its own queue task: two people hold two of them at once.
    task_claim(user=caseworker_alice, task_id=reviews[0].pk)
    task_claim(user=legal_reviewer_carol, task_id=reviews[2].pk)  # carol covers triage (demo escalation)
    task_complete(user=legal_reviewer_carol, task_id=reviews[2].pk, variables={"verdict": "ok"})
    task_complete(user=caseworker_alice, task_id=reviews[0].pk, variables={"verdict": "ok"})
    assert open_tasks(instance, "sign_off") == []  # one instance still open
    work(caseworker_alice, reviews[1], {"verdict": "bad"})

    sign_offs = open_tasks(instance, "sign_off")
    assert [(t.queue_id, t.variables) for t in sign_offs] == [("legal-review", {"loopCounter": 0})]
    assert "document" not in ProcessInstance.objects.get(pk=instance.pk).variables  # local to its instance


def test_a_sequential_loop_opens_the_next_instance_only_after_the_previous_and_stops_at_its_condition(
    supervisor_sam, caseworker_alice, legal_reviewer_carol
):
    instance = start(supervisor_sam, caseworker_alice, documents=["only.pdf"], signers=3)
    work(caseworker_alice, open_tasks(instance, "review_document")[0], {"verdict": "ok"})

    first = open_tasks(instance, "sign_off")
    assert len(first) == 1
    work(legal_reviewer_carol, first[0], {"approved": True})
    second = open_tasks(instance, "sign_off")
    assert [t.variables for t in second] == [{"loopCounter": 1}]
    assert ProcessInstance.objects.get(pk=instance.pk).status == "RUNNING"
    work(legal_reviewer_carol, second[0], {"approved": True})

    # nrOfCompletedInstances >= 2: the third signer is never asked, and the process ends.
    assert open_tasks(instance, "sign_off") == []
    assert WorkflowTask.objects.filter(process_instance=instance, task_definition_key="sign_off").count() == 2
    assert ProcessInstance.objects.get(pk=instance.pk).status == "COMPLETED"


def test_a_sequential_collection_runs_its_items_one_after_another():
    document = MULTI_INSTANCE_FILE.read_text().replace(
        'camunda:collection="${documents}"', 'isSequential="true" camunda:collection="${documents}"'
    )
    parsed = engine.parse_definition(bpmn_xml=document)
    from tests.tasks.engine.conftest import CASE_OPENED_AT as now

    run = engine.start(spec=parsed.spec, variables={"documents": ["a", "b"], "signers": 1}, now=now)
    seen = []
    while run.ready_user_tasks and run.ready_user_tasks[0].task_definition_key == "review_document":
        assert len(run.ready_user_tasks) == 1
        seen.append(run.ready_user_tasks[0].instance_variables["document"])
        run = engine.complete_task(
            spec=parsed.spec,
            state=run.state,
            engine_task_id=run.ready_user_tasks[0].engine_task_id,
            variables={"verdict": "ok"},
            now=now,
        )
    assert seen == ["a", "b"]
    assert [t.task_definition_key for t in run.ready_user_tasks] == ["sign_off"]


@pytest.mark.parametrize(
    ("loop", "message"),
    [
        ("<bpmn:multiInstanceLoopCharacteristics/>", "exactly one of a loop cardinality"),
        (
            '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${a.b}" camunda:elementVariable="x"/>',
            "must name a process variable",
        ),
        (
            "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>__import__('os')</bpmn:loopCardinality>"
            "</bpmn:multiInstanceLoopCharacteristics>",
            "__",
        ),
        (
            "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>3</bpmn:loopCardinality>"
            "<bpmn:completionCondition>${a &amp;&amp; b}</bpmn:completionCondition>"
            "</bpmn:multiInstanceLoopCharacteristics>",
            "invalid Python",
        ),
    ],
)
def test_a_loop_this_engine_cannot_run_is_refused_naming_the_task_and_line(loop, message):
    document = bpmn_document(
        linear_process(
            f'    <bpmn:userTask id="review" camunda:candidateGroups="triage">\n{loop}</bpmn:userTask>',
            node_ids=["review"],
        )
    )
    with pytest.raises(engine.BpmnError, match=message) as raised:
        engine.parse_definition(bpmn_xml=document)
    assert (raised.value.element_id, raised.value.line) == ("review", 6)


def test_a_script_task_cannot_be_multi_instance():
    document = bpmn_document(
        linear_process(
            '    <bpmn:scriptTask id="sum">'
            "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>2</bpmn:loopCardinality>"
            "</bpmn:multiInstanceLoopCharacteristics><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>",
            node_ids=["sum"],
        )
    )
    with pytest.raises(engine.BpmnError, match="multiInstanceLoopCharacteristics") as raised:
        engine.parse_definition(bpmn_xml=document)
    assert raised.value.element_id == "sum"


def test_a_parallel_loop_done_by_its_condition_cancels_its_open_instances(
    supervisor_sam, caseworker_alice, legal_reviewer_carol
):
    document = MULTI_INSTANCE_FILE.read_text().replace(
        '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${documents}" camunda:elementVariable="document" />',
        '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${documents}" camunda:elementVariable="document">'
        "<bpmn:completionCondition>${nrOfCompletedInstances == 2}</bpmn:completionCondition>"
        "</bpmn:multiInstanceLoopCharacteristics>",
    )
    definition_deploy(user=supervisor_sam, bpmn_xml=document)
    instance = process_start(
        user=caseworker_alice,
        process_key="multi_instance_review",
        business_key="MI-2",
        variables={"documents": ["a", "b", "c"], "signers": 1},
    )
    first, second, third = open_tasks(instance, "review_document")
    work(caseworker_alice, first, {"verdict": "ok"})
    assert WorkflowTask.objects.get(pk=third.pk).status == "OPEN"
    work(caseworker_alice, second, {"verdict": "ok"})

    assert WorkflowTask.objects.get(pk=third.pk).status == "CANCELLED"
    assert [t.task_definition_key for t in open_tasks(instance, "sign_off")] == ["sign_off"]
