"""DMN decision tables: parsed safely, checked, evaluated in the script sandbox, and run by business rule tasks.

A .dmn document (DMN 1.1 to 1.3, as Camunda Modeler writes it) holds one or more <decision id="KEY"> each with a
<decisionTable hitPolicy="UNIQUE|FIRST|COLLECT|ANY|RULE ORDER">; each decision is deployed as the next version of
its key (tasks/bpmn/decisions.py). Expressions are Python over the variables (as every expression of this engine),
run in the sandbox of script_sandbox.py with its bounds:

  input expression   `amount`, `customer["tier"]`
  input entry        empty or `-`: any value; `< 1000`, `>= 5`, `!= "x"`, `in [..]`, `not in (..)`: the input,
                     then the entry; `[1..10]`, `]1..10[`, `[1..10[`: a range (FEEL's brackets); `"gold", "silver"`:
                     one of them; anything else: equal to the input (`"gold"`, `true`/`false` read as Python's)
  output entry       a Python expression: `"approve"`, `amount * 0.1`

Hit policies: UNIQUE (more than one matching rule is an error), FIRST (the first match in rule order), ANY (all
matches must give the same outputs), RULE ORDER and COLLECT (every match, in order; COLLECT without an
aggregation). A result is a list of {output name: value}, one per matched rule.

A <bpmn:businessRuleTask camunda:decisionRef="KEY"> evaluates the latest active version of KEY when it runs
(camunda:decisionRefBinding="version" camunda:decisionRefVersion="2" pins one), over the process variables.
camunda:resultVariable="name" stores the result there as camunda:mapDecisionResult says (singleEntry: the one
value; singleResult: the one {output: value}; collectEntries: the list of values of the one output; resultList,
the default: the list); without a resultVariable the outputs become process variables (each a list under COLLECT
and RULE ORDER, else the one matched rule's).

The engine has no database: the services register how a decision is found (use_resolver), and the engine asks it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from lxml import etree
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.specs.defaults import NoneTask

from . import script_sandbox
from .errors import BpmnError, EngineError, ScriptError, ScriptLimitExceeded
from .script_sandbox import unsafe_source

DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",  # 1.3
    "http://www.omg.org/spec/DMN/20180521/MODEL/",  # 1.2
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",  # 1.1
)
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
HIT_POLICIES = ("UNIQUE", "FIRST", "ANY", "RULE ORDER", "COLLECT")
RESULT_MAPPINGS = ("resultList", "singleEntry", "singleResult", "collectEntries")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_KEY = re.compile(r"[A-Za-z_][-A-Za-z0-9_.]*")
_RANGE = re.compile(r"\s*([\[\]])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\]])\s*", re.DOTALL)
_OPERATOR = re.compile(r"\s*(<=|>=|<|>|==|!=|not\s+in\b|in\b)")


# --- parsing ------------------------------------------------------------------------------------------------


def parse_decisions(*, dmn_xml: str) -> list[dict]:
    """Every decision table of a DMN document, checked; BpmnError naming the element and line of the first problem.

    A decision: {"key", "name", "hit_policy", "inputs": [{"id", "label", "expression"}], "outputs": [{"id", "label",
    "name"}], "rules": [{"id", "description", "inputs": [entry text], "outputs": [entry text]}]}.
    """
    if not isinstance(dmn_xml, str) or not dmn_xml.strip():
        raise BpmnError("the decision document is empty, not an XML document")
    parser = etree.XMLParser(encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(dmn_xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnError(f"not well-formed XML: {exc.msg}", line=exc.lineno) from exc
    if root.getroottree().docinfo.doctype:
        raise BpmnError("a DOCTYPE is not allowed in a DMN document", line=1)
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "definitions" or namespace not in DMN_NAMESPACES:
        raise BpmnError(
            f"not a DMN 1.1-1.3 document: the root is <{etree.QName(root).localname}>", line=root.sourceline
        )
    decisions = [_decision(element, namespace) for element in root.iterchildren(f"{{{namespace}}}decision")]
    if not decisions:
        raise BpmnError("the document has no decision", line=root.sourceline)
    keys = [d["key"] for d in decisions]
    if len(set(keys)) != len(keys):
        raise BpmnError("two decisions have the same id", line=root.sourceline)
    return decisions


def _refuse(detail: str, element: etree._Element) -> BpmnError:
    node = element
    while node is not None and not node.get("id"):
        node = node.getparent()
    return BpmnError(detail, element_id=node.get("id") if node is not None else None, line=element.sourceline)


def _decision(element: etree._Element, ns: str) -> dict:
    key = element.get("id") or ""
    if not _KEY.fullmatch(key):
        raise _refuse(f"decision id '{key}' must be a key (letters, digits, '-', '_', '.')", element)
    tables = list(element.iterchildren(f"{{{ns}}}decisionTable"))
    if len(tables) != 1:
        raise _refuse(
            "a decision must hold exactly one decision table (literal expressions are not supported)", element
        )
    table = tables[0]
    hit_policy = (table.get("hitPolicy") or "UNIQUE").upper()
    if hit_policy not in HIT_POLICIES:
        raise _refuse(f"hit policy '{hit_policy}' is not supported; supported: {', '.join(HIT_POLICIES)}", table)
    if table.get("aggregation"):
        raise _refuse("COLLECT with an aggregation is not supported", table)
    inputs = []
    for node in table.iterchildren(f"{{{ns}}}input"):
        text_node = node.find(f"{{{ns}}}inputExpression/{{{ns}}}text")
        expression = (text_node.text or "").strip() if text_node is not None else ""
        if not expression:
            raise _refuse("an input needs an input expression", node)
        _check(expression, text_node)
        inputs.append({"id": node.get("id"), "label": node.get("label") or expression, "expression": expression})
    outputs = []
    for node in table.iterchildren(f"{{{ns}}}output"):
        name = node.get("name") or ""
        if not _NAME.fullmatch(name):
            raise _refuse(f"output name '{name}' must be a variable name", node)
        outputs.append({"id": node.get("id"), "label": node.get("label") or name, "name": name})
    if not outputs:
        raise _refuse("a decision table needs at least one output", table)
    rules = []
    for node in table.iterchildren(f"{{{ns}}}rule"):
        entries = [
            ((entry.findtext(f"{{{ns}}}text") or "").strip(), entry)
            for entry in node.iterchildren(f"{{{ns}}}inputEntry")
        ]
        results = [
            ((entry.findtext(f"{{{ns}}}text") or "").strip(), entry)
            for entry in node.iterchildren(f"{{{ns}}}outputEntry")
        ]
        if len(entries) != len(inputs) or len(results) != len(outputs):
            raise _refuse("a rule needs one entry per input and per output", node)
        for text, entry in entries:
            _check(input_test("x", text), entry)
        for text, entry in results:
            if text:
                _check(text, entry)
        description = node.findtext(f"{{{ns}}}description") or ""
        rules.append(
            {
                "id": node.get("id"),
                "description": description.strip(),
                "inputs": [text for text, _ in entries],
                "outputs": [text for text, _ in results],
            }
        )
    return {
        "key": key,
        "name": element.get("name") or key,
        "hit_policy": hit_policy,
        "inputs": inputs,
        "outputs": outputs,
        "rules": rules,
    }


def _check(source: str, element: etree._Element) -> None:
    problem = unsafe_source(source, "eval")
    if problem is not None:
        raise _refuse(f"{problem[0]}: {source!r}", element)


def _python_literal(text: str) -> str:
    """FEEL's true/false/null as Python's."""
    return {"true": "True", "false": "False", "null": "None"}.get(text.strip(), text)


def input_test(name: str, entry: str) -> str:
    """The Python test of an input entry against the input value held in variable `name` ('True' for any)."""
    entry = entry.strip()
    if entry in ("", "-"):
        return "True"
    if entry.startswith("not(") and entry.endswith(")"):
        return f"not ({input_test(name, entry[4:-1])})"
    if matched := _RANGE.fullmatch(entry):
        opening, low, high, closing = matched.groups()
        low_op = ">=" if opening == "[" else ">"
        high_op = "<=" if closing == "]" else "<"
        return f"({name} {low_op} ({low}) and {name} {high_op} ({high}))"
    if _OPERATOR.match(entry):
        return f"({name} {entry})"
    try:
        parsed = ast.parse(entry, mode="eval").body
    except SyntaxError:
        return f"({name} == ({entry}))"  # refused when checked, with the entry's text
    if isinstance(parsed, ast.Tuple):
        return f"({name} in ({entry}))"
    return f"({name} == ({_python_literal(entry)}))"


# --- evaluating ---------------------------------------------------------------------------------------------


def evaluate(decision: dict, variables: dict, *, element_id: str | None = None) -> list[dict]:
    """The decision's result over `variables`: a list of {output name: value}, one per matched rule, as its hit
    policy has it. Every expression runs in the sandbox; ScriptError (or ScriptLimitExceeded) when one fails."""
    pool = script_sandbox.default_pool()
    inputs = _run(pool, _list(i["expression"] for i in decision["inputs"]), variables, element_id)
    names = {f"dmn_input_{n}": value for n, value in enumerate(inputs)}
    tests = [
        " and ".join(input_test(f"dmn_input_{n}", entry) for n, entry in enumerate(rule["inputs"])) or "True"
        for rule in decision["rules"]
    ]
    matched_flags = _rule_flags(pool, tests, names, element_id)
    matched = [rule for rule, hit in zip(decision["rules"], matched_flags, strict=True) if hit]
    policy = decision["hit_policy"]
    if policy == "UNIQUE" and len(matched) > 1:
        rows = ", ".join(str(decision["rules"].index(rule) + 1) for rule in matched)
        raise ScriptError(
            f"decision {decision['key']} (UNIQUE) matched more than one rule: rows {rows}", element_id=element_id
        )
    if policy == "FIRST":
        matched = matched[:1]
    results = []
    if matched:
        rows = (_list(text or "None" for text in rule["outputs"]) for rule in matched)
        values = _run(pool, _list(rows), variables, element_id)
        names_out = [output["name"] for output in decision["outputs"]]
        results = [dict(zip(names_out, row, strict=True)) for row in values]
    if policy == "ANY" and any(result != results[0] for result in results):
        raise ScriptError(
            f"decision {decision['key']} (ANY) matched rules with different outputs", element_id=element_id
        )
    if policy == "ANY":
        results = results[:1]
    return results


def _rule_flags(pool, tests: list[str], names: dict, element_id: str | None) -> list[bool]:
    """Whether each rule matches. An entry comparing values of other types (`> 5` for a text input) does not match,
    as in FEEL, rather than failing the decision: when the one-call evaluation meets a TypeError, each rule is
    evaluated apart."""
    try:
        return _run(pool, _list(f"bool({t})" for t in tests), names, element_id, raw_type_errors=True)
    except _TypeMismatch:
        flags = []
        for test in tests:
            try:
                flags.append(_run(pool, f"bool({test})", names, element_id, raw_type_errors=True))
            except _TypeMismatch:
                flags.append(False)
        return flags


class _TypeMismatch(Exception):
    pass


def _list(expressions) -> str:
    """One Python list expression of `expressions`, so that a table costs a few sandbox calls, not one per cell."""
    return "[" + ", ".join(f"({expression})" for expression in expressions) + "]"


def _run(pool, expression: str, context: dict, element_id: str | None, *, raw_type_errors: bool = False) -> Any:
    problem = unsafe_source(expression, "eval")
    if problem is not None:
        raise ScriptError(f"refused: {problem[0]}", element_id=element_id)
    try:
        return pool.evaluate(expression, context, {})
    except script_sandbox.LimitExceeded as exc:
        raise ScriptLimitExceeded(f"decision {exc.detail}", element_id=element_id, kind=exc.kind) from None
    except script_sandbox.ScriptRaised as exc:
        if raw_type_errors and exc.type_name == "TypeError":
            raise _TypeMismatch() from None
        raise ScriptError(f"decision failed: {exc.type_name}: {exc.message}", element_id=element_id) from None
    except script_sandbox.ScriptRefused as exc:
        raise ScriptError(f"refused: {exc}", element_id=element_id) from None


def mapped_result(results: list[dict], *, decision: dict, mapping: str, element_id: str | None) -> Any:
    """A result as camunda:mapDecisionResult maps it into a result variable."""
    if mapping == "resultList":
        return results
    if mapping == "collectEntries":
        if len(decision["outputs"]) != 1:
            raise ScriptError("collectEntries needs a decision with one output", element_id=element_id)
        return [next(iter(result.values())) for result in results]
    if len(results) > 1:
        raise ScriptError(f"{mapping} needs at most one matched rule; {len(results)} matched", element_id=element_id)
    if mapping == "singleResult":
        return results[0] if results else None
    if len(decision["outputs"]) != 1:
        raise ScriptError("singleEntry needs a decision with one output", element_id=element_id)
    return next(iter(results[0].values())) if results else None


def variables_from_result(results: list[dict], *, decision: dict) -> dict:
    """The outputs as process variables, when the task names no result variable."""
    if decision["hit_policy"] in ("COLLECT", "RULE ORDER"):
        return {output["name"]: [result[output["name"]] for result in results] for output in decision["outputs"]}
    return dict(results[0]) if results else {}


# --- business rule tasks ------------------------------------------------------------------------------------

Resolver = Callable[[str, int | None], dict | None]
_resolver: list[Resolver] = []


def use_resolver(resolver: Resolver) -> None:
    """Register how a business rule task finds its decision: (key, version or None for the latest) -> decision dict
    (parse_decisions' shape), or None when there is none. The services register theirs when the app starts."""
    _resolver[:] = [resolver]


def read_business_rule_task(element: etree._Element) -> dict:
    """A businessRuleTask's camunda attributes, checked: {decision_ref, version, result_variable, mapping}."""
    camunda = f"{{{CAMUNDA_NS}}}"
    ref = (element.get(f"{camunda}decisionRef") or "").strip()
    if not _KEY.fullmatch(ref):
        raise _refuse("a business rule task needs camunda:decisionRef: the key of a deployed decision", element)
    binding = element.get(f"{camunda}decisionRefBinding", "latest")
    version = None
    if binding == "version":
        text = (element.get(f"{camunda}decisionRefVersion") or "").strip()
        if not (text.isascii() and text.isdigit() and int(text) > 0):
            raise _refuse(f"camunda:decisionRefVersion '{text}' must be a version number", element)
        version = int(text)
    elif binding != "latest":
        raise _refuse(f"camunda:decisionRefBinding '{binding}' is not supported; use latest or version", element)
    result_variable = element.get(f"{camunda}resultVariable")
    if result_variable is not None and not _NAME.fullmatch(result_variable):
        raise _refuse(f"camunda:resultVariable '{result_variable}' must be a variable name", element)
    mapping = element.get(f"{camunda}mapDecisionResult", "resultList")
    if mapping not in RESULT_MAPPINGS:
        raise _refuse(f"camunda:mapDecisionResult '{mapping}' is not one of {', '.join(RESULT_MAPPINGS)}", element)
    return {"decision_ref": ref, "version": version, "result_variable": result_variable, "mapping": mapping}


def business_rule_tasks(process: etree._Element) -> dict[str, dict]:
    return {
        element.get("id"): read_business_rule_task(element)
        for element in process.iter(f"{{{BPMN_NS}}}businessRuleTask")
    }


class DecisionTask(NoneTask):
    """A business rule task: evaluates its decision (found through the registered resolver) when it runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.manual = False  # a plain task waits for someone; this one runs as the engine reaches it

    def _run_hook(self, my_task):
        info = self.extensions["decision"]
        element_id = self.bpmn_id
        decision = _resolver[0](info["decision_ref"], info["version"]) if _resolver else None
        if decision is None:
            what = info["decision_ref"] + (f" version {info['version']}" if info["version"] else "")
            raise EngineError(f"the decision {what} is not deployed", element_id=element_id)
        results = evaluate(decision, my_task.data, element_id=element_id)
        if info["result_variable"]:
            my_task.data[info["result_variable"]] = mapped_result(
                results, decision=decision, mapping=info["mapping"], element_id=element_id
            )
        else:
            my_task.data.update(variables_from_result(results, decision=decision))
        return super()._run_hook(my_task)


class DecisionTaskParser(SpiffTaskParser):
    """Reads a businessRuleTask's decision into its extensions, which SpiffWorkflow's serializer keeps."""

    @staticmethod
    def get_decision_ref(node):  # SpiffWorkflow's parser lists the decisions a model depends on
        return node.get(f"{{{CAMUNDA_NS}}}decisionRef")

    def parse_extensions(self, node=None):
        return {**super().parse_extensions(node), "decision": read_business_rule_task(self.node)}
