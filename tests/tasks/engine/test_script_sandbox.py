"""Conditions and scripts are Python from whoever deploys a model: they run without imports or dunder access."""

import json
from pathlib import Path

import pytest

from tasks.bpmn import engine

from .documents import bpmn_document, linear_process, script_task, user_task

MARKER = Path("/tmp/onecms_engine_pwned")


@pytest.fixture(autouse=True)
def no_marker_file():
    MARKER.unlink(missing_ok=True)
    yield
    MARKER.unlink(missing_ok=True)


def model_with_script(script: str) -> str:
    return bpmn_document(
        linear_process(script_task("run_me", script), user_task("review"), node_ids=["run_me", "review"])
    )


def test_a_script_importing_os_is_refused_at_deploy_and_creates_no_file():
    document = model_with_script(f"__import__('os').system('touch {MARKER}')")

    with pytest.raises(engine.BpmnError) as caught:
        engine.parse_definition(bpmn_xml=document)

    assert caught.value.element_id == "run_me"
    assert "__import__" in caught.value.detail
    assert not MARKER.exists()


def test_a_stored_spec_tampered_to_import_os_fails_at_run_time_and_creates_no_file(t0):
    spec = engine.parse_definition(bpmn_xml=model_with_script("x = 1")).spec
    tampered = json.loads(json.dumps(spec).replace('"x = 1"', json.dumps(f"__import__('os').system('touch {MARKER}')")))

    with pytest.raises(engine.ScriptError) as caught:
        engine.start(spec=tampered, variables={}, now=t0)

    assert caught.value.element_id == "run_me"
    assert not MARKER.exists()


def test_builtins_outside_the_safe_set_are_not_there_at_run_time(t0):
    spec = engine.parse_definition(bpmn_xml=model_with_script(f"open('{MARKER}', 'w')")).spec

    with pytest.raises(engine.ScriptError, match="NameError"):
        engine.start(spec=spec, variables={}, now=t0)

    assert not MARKER.exists()


@pytest.mark.parametrize(
    "script",
    [
        "import os",
        "from os import system",
        "x = ().__class__.__bases__[0].__subclasses__()",
        "x = [c for c in ().__class__.__base__.__subclasses__()]",
        "g = (i for i in [1]); f = g.gi_frame.f_back",
        "x = '{0.__class__}'.format(1)",
        "__builtins__ = None",
        "def f(__x): return __x",
        "class Escape: pass",
    ],
)
def test_unsafe_scripts_are_refused_at_deploy(script):
    with pytest.raises(engine.BpmnError) as caught:
        engine.parse_definition(bpmn_xml=model_with_script(script))

    assert caught.value.element_id == "run_me"


def test_an_unsafe_gateway_condition_is_refused_naming_its_flow():
    document = bpmn_document(
        '    <bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="choose" default="other"/>\n'
        + user_task("a")
        + user_task("b")
        + '\n    <bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="choose"/>'
        '<bpmn:sequenceFlow id="sneaky" sourceRef="choose" targetRef="a">'
        "<bpmn:conditionExpression>().__class__ is None</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="other" sourceRef="choose" targetRef="b"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="end"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="end"/>'
    )

    with pytest.raises(engine.BpmnError) as caught:
        engine.parse_definition(bpmn_xml=document)

    assert caught.value.element_id == "sneaky"


def test_safe_scripts_can_use_the_safe_builtins_and_variables(t0):
    script = "score = min(100, sum([len(name) for name in names]))\nlabel = ', '.join(sorted(names)).upper()"
    spec = engine.parse_definition(bpmn_xml=model_with_script(script)).spec

    run = engine.start(spec=spec, variables={"names": ["bo", "al"]}, now=t0)

    assert (run.variables["score"], run.variables["label"]) == (4, "AL, BO")


def test_a_script_leaving_a_non_json_value_fails(t0):
    spec = engine.parse_definition(bpmn_xml=model_with_script("tags = set([1, 2])")).spec

    with pytest.raises(engine.ScriptError, match="JSON"):
        engine.start(spec=spec, variables={}, now=t0)


def test_variables_may_not_smuggle_in_builtins(t0):
    spec = engine.parse_definition(bpmn_xml=model_with_script("x = len('a')")).spec

    with pytest.raises(engine.TaskDataError) as caught:
        engine.start(spec=spec, variables={"__builtins__": {}}, now=t0)

    assert "__builtins__" in caught.value.field_errors


def test_a_model_that_loops_without_waiting_is_stopped(t0, monkeypatch):
    document = bpmn_document(
        '    <bpmn:startEvent id="start"/>\n'
        + script_task("spin", "n = n + 1")
        + '\n    <bpmn:exclusiveGateway id="again" default="back"/>\n'
        + user_task("never_reached")
        + '\n    <bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="spin"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="spin" targetRef="again"/>'
        '<bpmn:sequenceFlow id="back" sourceRef="again" targetRef="spin"/>'
        '<bpmn:sequenceFlow id="out" sourceRef="again" targetRef="never_reached">'
        "<bpmn:conditionExpression>n &lt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="f5" sourceRef="never_reached" targetRef="end"/>'
    )
    spec = engine.parse_definition(bpmn_xml=document).spec
    monkeypatch.setattr(engine, "MAX_AUTOMATIC_STEPS", 50)

    with pytest.raises(engine.EngineError, match="automatic steps"):
        engine.start(spec=spec, variables={"n": 0}, now=t0)
