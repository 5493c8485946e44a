"""Scripts and conditions are stopped at their CPU-time and memory bounds, naming the element, in a child process."""

import os
import signal
import threading

import pytest

from tasks.bpmn import engine, script_sandbox

from .documents import bpmn_document, linear_process, script_task, user_task

# Each attack in a scriptTask; none can be interrupted from inside a thread of the web process.
SCRIPT_ATTACKS = {
    "endless loop": "while True: pass",
    "huge string": 'x = "a" * 10**10',
    "huge list": "x = [0] * 10**9",
    "huge power": "x = 10**10**10",
}
# The same attacks as gateway conditions (expressions): sum over a huge range is one long C call.
CONDITION_ATTACKS = {
    "endless loop": "sum(range(10**15)) &gt; 0",
    "huge string": 'len("a" * 10**10) &gt; 0',
    "huge list": "len([0] * 10**9) &gt; 0",
    "huge power": "10**10**10 &gt; 0",
}
# Generous: only there so that a regression fails instead of hanging the suite.
HANG_GUARD_SECONDS = 60


def model_with_script(script: str) -> str:
    return bpmn_document(
        linear_process(script_task("run_me", script), user_task("review"), node_ids=["run_me", "review"])
    )


def model_with_condition(condition: str) -> str:
    return bpmn_document(
        '    <bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="choose" default="other"/>\n'
        + user_task("a")
        + user_task("b")
        + '\n    <bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="choose"/>'
        '<bpmn:sequenceFlow id="heavy" sourceRef="choose" targetRef="a">'
        f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="other" sourceRef="choose" targetRef="b"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="end"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="end"/>'
    )


def start_guarded(spec, t0, variables=None):
    """engine.start in a daemon thread: the error it raised, or a failure if it is still running at the guard."""
    outcome = {}

    def run():
        try:
            outcome["run"] = engine.start(spec=spec, variables=variables or {}, now=t0)
        except Exception as exc:  # examined by the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=HANG_GUARD_SECONDS)
    assert not thread.is_alive(), "the evaluation was not stopped"
    return outcome


@pytest.mark.parametrize("attack", SCRIPT_ATTACKS.values(), ids=SCRIPT_ATTACKS.keys())
def test_an_attack_in_a_script_task_is_stopped_with_the_limit_error_naming_the_task(attack, t0):
    spec = engine.parse_definition(bpmn_xml=model_with_script(attack)).spec

    outcome = start_guarded(spec, t0)

    error = outcome.get("error")
    assert isinstance(error, engine.ScriptLimitExceeded), outcome
    assert error.element_id == "run_me"
    assert error.kind in ("cpu", "memory")
    assert "stopped" in error.detail


@pytest.mark.parametrize("attack", CONDITION_ATTACKS.values(), ids=CONDITION_ATTACKS.keys())
def test_an_attack_in_a_gateway_condition_is_stopped_with_the_limit_error_naming_the_gateway(attack, t0):
    spec = engine.parse_definition(bpmn_xml=model_with_condition(attack)).spec

    outcome = start_guarded(spec, t0)

    error = outcome.get("error")
    assert isinstance(error, engine.ScriptLimitExceeded), outcome
    assert error.element_id == "choose"


def test_the_limit_error_says_which_limit_was_hit(t0):
    loop = engine.parse_definition(bpmn_xml=model_with_script("while True: pass")).spec
    hog = engine.parse_definition(bpmn_xml=model_with_script('x = "a" * 10**10')).spec

    cpu, memory = start_guarded(loop, t0)["error"], start_guarded(hog, t0)["error"]

    assert (cpu.kind, memory.kind) == ("cpu", "memory")
    assert "1 s of CPU time" in cpu.detail
    assert "64 MB of memory" in memory.detail


def test_the_limits_come_from_the_settings(t0, settings):
    settings.WORKFLOW_SCRIPT_MEMORY_MB = 256
    # About 100 MB: over the default 64 MB, within 256 MB.
    spec = engine.parse_definition(bpmn_xml=model_with_script('n = len("a" * 100_000_000)')).spec

    run = engine.start(spec=spec, variables={}, now=t0)

    assert run.variables["n"] == 100_000_000


def test_a_normal_script_still_runs_and_its_variables_come_back_without_its_functions(t0):
    script = "def double(v): return v * 2\nscore = double(amount)\nnames = sorted(tags)"
    spec = engine.parse_definition(bpmn_xml=model_with_script(script)).spec

    run = engine.start(spec=spec, variables={"amount": 21, "tags": ["b", "a"]}, now=t0)

    assert run.variables == {"amount": 21, "tags": ["b", "a"], "score": 42, "names": ["a", "b"]}


def test_a_condition_may_give_a_non_json_value_and_its_truth_decides(t0):
    spec = engine.parse_definition(bpmn_xml=model_with_condition("set(tags)")).spec

    chosen = engine.start(spec=spec, variables={"tags": ["x"]}, now=t0)
    default = engine.start(spec=spec, variables={"tags": []}, now=t0)

    assert [t.task_definition_key for t in chosen.ready_user_tasks] == ["a"]
    assert [t.task_definition_key for t in default.ready_user_tasks] == ["b"]


def test_the_child_refuses_unsafe_source_even_if_the_web_process_did_not_check():
    pool = script_sandbox.ScriptPool(cpu_seconds=1, memory_mb=64, size=1)
    try:
        with pytest.raises(script_sandbox.ScriptRefused, match="__import__"):
            pool.execute("__import__('os')", {})
    finally:
        pool.close()


def test_the_pool_replaces_a_child_killed_while_idle():
    pool = script_sandbox.ScriptPool(cpu_seconds=1, memory_mb=64, size=1)
    try:
        assert pool.evaluate("a + 1", {"a": 1}) == 2
        (child,) = pool._idle
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait()

        assert pool.evaluate("a * 3", {"a": 2}) == 6

        (replacement,) = pool._idle
        assert replacement.process.pid != child.process.pid
    finally:
        pool.close()


def test_the_pool_discards_a_child_that_hit_a_limit_and_the_next_evaluation_works():
    pool = script_sandbox.ScriptPool(cpu_seconds=1, memory_mb=64, size=1)
    try:
        with pytest.raises(script_sandbox.LimitExceeded):
            pool.execute("x = [0] * 10**9", {})
        assert pool._idle == []

        assert pool.execute("y = x + 1", {"x": 1}) == {"x": 1, "y": 2}
    finally:
        pool.close()


def test_threads_evaluating_at_once_each_get_their_own_answer_while_one_is_stopped():
    pool = script_sandbox.ScriptPool(cpu_seconds=1, memory_mb=64, size=3)
    results, barrier = {}, threading.Barrier(9)

    def evaluate(n):
        barrier.wait()
        try:
            results[n] = pool.execute("y = x * x", {"x": n}) if n else pool.execute("while True: pass", {})
        except script_sandbox.LimitExceeded as exc:
            results[n] = exc.kind

    threads = [threading.Thread(target=evaluate, args=(n,), daemon=True) for n in range(9)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=HANG_GUARD_SECONDS)
        assert results == {0: "cpu", **{n: {"x": n, "y": n * n} for n in range(1, 9)}}
        assert len(pool._idle) <= 3
    finally:
        pool.close()
