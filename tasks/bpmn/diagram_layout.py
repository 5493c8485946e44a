"""Where each shape and flow of a BPMN diagram goes: the model's own diagram (BPMN DI) when it places every node of
the process, else an automatic layout left to right. tasks/bpmn/diagram.py draws the result."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from . import engine

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"

EVENT_KINDS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
GATEWAY_KINDS = frozenset(
    {
        "exclusiveGateway",
        "inclusiveGateway",
        "parallelGateway",
        "eventBasedGateway",
        "complexGateway",
    }
)
ACTIVITY_KINDS = frozenset(
    {
        "task",
        "userTask",
        "scriptTask",
        "serviceTask",
        "manualTask",
        "sendTask",
        "receiveTask",
        "businessRuleTask",
        "callActivity",
        "subProcess",
        "transaction",
        "adHocSubProcess",
    }
)
FLOW_NODE_KINDS = EVENT_KINDS | GATEWAY_KINDS | ACTIVITY_KINDS
CONTAINER_KINDS = frozenset({"subProcess", "transaction", "adHocSubProcess"})

# Automatic layout, for models without diagram information.
AUTO_MARGIN = 40
AUTO_COLUMN_WIDTH = 160
AUTO_ROW_HEIGHT = 140
AUTO_EVENT_SIZE = 36
AUTO_GATEWAY_SIZE = 50
AUTO_TASK_WIDTH = 100
AUTO_TASK_HEIGHT = 80
AUTO_ELBOW = 20  # how far from a shape a flow turns
AUTO_BOUNDARY_SPACING = 44  # between boundary events on one host's bottom edge
AUTO_BOUNDARY_INSET = 15  # the first boundary event's distance from the host's right-hand corner
AUTO_BACK_EDGE_CLEARANCE = 18  # a flow back to an earlier column runs this far above the row's bottom


class DiagramError(Exception):
    """The definition's XML cannot be drawn; `detail` says why for a human."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- the model, as far as a picture needs it ------------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True)
class ModelElement:
    id: str
    kind: str  # the BPMN tag's local name: userTask, startEvent, lane, sequenceFlow...
    name: str
    source: str | None = None  # flows and associations
    target: str | None = None
    attached_to: str | None = None  # boundary events
    interrupting: bool = True
    event_definition: str | None = None  # local name, e.g. timerEventDefinition
    is_default_flow: bool = False


@dataclass(frozen=True)
class Shape:
    element: ModelElement
    bounds: Bounds
    label: Bounds | None = None
    expanded: bool = False  # a subprocess drawn with its content
    horizontal: bool = True  # pools and lanes


@dataclass(frozen=True)
class Edge:
    element: ModelElement
    points: list[tuple[float, float]]
    label: Bounds | None = None


@dataclass
class Layout:
    shapes: list[Shape] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


# --- reading the model ------------------------------------------------------------------------------------------


def diagram_layout(*, bpmn_xml: str) -> Layout:
    """The definition's shapes and flows, placed. Raises DiagramError when the XML cannot be read."""
    root = _read_xml(bpmn_xml)
    elements = _model_elements(root)
    return _di_layout(root, elements) or _auto_layout(root, elements)


def _read_xml(bpmn_xml: str) -> etree._Element:
    try:
        return engine.read_bpmn_document(bpmn_xml=bpmn_xml)
    except engine.BpmnError as exc:
        raise DiagramError(exc.detail) from exc


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _bpmn_elements(root: etree._Element) -> Iterable[etree._Element]:
    return (e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).namespace == BPMN_NS)


def _model_elements(root: etree._Element) -> dict[str, ModelElement]:
    """Every BPMN element with an id, by id."""
    default_flows = {e.get("default") for e in _bpmn_elements(root) if e.get("default")}
    elements: dict[str, ModelElement] = {}
    for element in _bpmn_elements(root):
        element_id = element.get("id")
        if not element_id:
            continue
        kind = _local(element)
        name = element.get("name") or ""
        if kind == "textAnnotation":
            text = element.find(f"{{{BPMN_NS}}}text")
            name = (text.text or "") if text is not None else ""
        definition = next(
            (_local(c) for c in element if isinstance(c.tag, str) and _local(c).endswith("EventDefinition")), None
        )
        elements[element_id] = ModelElement(
            id=element_id,
            kind=kind,
            name=" ".join(name.split()),
            source=element.get("sourceRef"),
            target=element.get("targetRef"),
            attached_to=element.get("attachedToRef"),
            interrupting=element.get("cancelActivity") != "false",
            event_definition=definition,
            is_default_flow=element_id in default_flows,
        )
    return elements


def _main_process(root: etree._Element) -> etree._Element | None:
    processes = list(root.iterchildren(f"{{{BPMN_NS}}}process"))
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    return (executable or processes or [None])[0]


def _top_level_nodes(process: etree._Element | None, elements: dict[str, ModelElement]) -> list[ModelElement]:
    if process is None:
        return []
    ids = (child.get("id") for child in process if isinstance(child.tag, str))
    return [elements[i] for i in ids if i in elements and elements[i].kind in FLOW_NODE_KINDS]


# --- layout from the model's diagram (BPMN DI) ------------------------------------------------------------------


def _number(element: etree._Element, attribute: str) -> float:
    try:
        value = float(element.get(attribute, ""))
    except ValueError:
        raise DiagramError(f"diagram coordinate {attribute}={element.get(attribute)!r} is not a number") from None
    if not math.isfinite(value):
        raise DiagramError(f"diagram coordinate {attribute}={element.get(attribute)!r} is not a finite number")
    return value


def _bounds(parent: etree._Element) -> Bounds | None:
    found = parent.find(f"{{{DC_NS}}}Bounds")
    if found is None:
        return None
    return Bounds(*(_number(found, a) for a in ("x", "y", "width", "height")))


def _label_bounds(parent: etree._Element) -> Bounds | None:
    label = parent.find(f"{{{BPMNDI_NS}}}BPMNLabel")
    return _bounds(label) if label is not None else None


def _di_layout(root: etree._Element, elements: dict[str, ModelElement]) -> Layout | None:
    """The model's first diagram plane, or None when it does not place every node of the process."""
    # Further planes hold the insides of collapsed subprocesses: the overview is the first one.
    plane = root.find(f"{{{BPMNDI_NS}}}BPMNDiagram/{{{BPMNDI_NS}}}BPMNPlane")
    if plane is None:
        return None
    layout = Layout()
    for shape in plane.iterchildren(f"{{{BPMNDI_NS}}}BPMNShape"):
        element = elements.get(shape.get("bpmnElement") or "")
        bounds = _bounds(shape)
        if element is None or bounds is None:
            continue
        layout.shapes.append(
            Shape(
                element=element,
                bounds=bounds,
                label=_label_bounds(shape),
                expanded=shape.get("isExpanded") == "true",
                horizontal=shape.get("isHorizontal") != "false",
            )
        )
    for edge in plane.iterchildren(f"{{{BPMNDI_NS}}}BPMNEdge"):
        element = elements.get(edge.get("bpmnElement") or "")
        points = [(_number(p, "x"), _number(p, "y")) for p in edge.iterchildren(f"{{{DI_NS}}}waypoint")]
        if element is None or len(points) < 2:
            continue
        layout.edges.append(Edge(element=element, points=points, label=_label_bounds(edge)))
    placed = {shape.element.id for shape in layout.shapes}
    nodes = _top_level_nodes(_main_process(root), elements)
    if not nodes or any(node.id not in placed for node in nodes):
        return None
    return layout


# --- automatic layout: left to right by longest path, one row per branch ----------------------------------------


def _auto_size(element: ModelElement) -> tuple[float, float]:
    if element.kind in EVENT_KINDS:
        return AUTO_EVENT_SIZE, AUTO_EVENT_SIZE
    if element.kind in GATEWAY_KINDS:
        return AUTO_GATEWAY_SIZE, AUTO_GATEWAY_SIZE
    return AUTO_TASK_WIDTH, AUTO_TASK_HEIGHT


def _auto_layout(root: etree._Element, elements: dict[str, ModelElement]) -> Layout:
    process = _main_process(root)
    nodes = _top_level_nodes(process, elements)
    node_ids = {node.id for node in nodes}
    flows = [
        elements[child.get("id")]
        for child in (process if process is not None else [])
        if isinstance(child.tag, str) and _local(child) == "sequenceFlow" and child.get("id") in elements
    ]
    flows = [f for f in flows if f.source in node_ids and f.target in node_ids]
    boundary = {n.id: n.attached_to for n in nodes if n.kind == "boundaryEvent" and n.attached_to in node_ids}

    # A boundary event sits in its host's column: a zero-length step from host to event.
    successors: dict[str, list[tuple[str, int]]] = {node.id: [] for node in nodes}
    for flow in flows:
        successors[flow.source].append((flow.target, 1))
    for event_id, host_id in boundary.items():
        successors[host_id].append((event_id, 0))

    order, back_edges = _depth_first(nodes, successors)
    column = {node_id: 0 for node_id in order}
    for node_id in order:  # a topological order once back edges are set aside: longest path from a start
        for target, step in successors[node_id]:
            if (node_id, target) not in back_edges:
                column[target] = max(column[target], column[node_id] + step)
    grid = _place_rows(order, successors, back_edges, column, boundary)

    shapes: dict[str, Shape] = {}
    boundary_count: dict[str, int] = {}
    for node_id in order:
        if node_id in boundary:
            continue
        width, height = _auto_size(elements[node_id])
        centre_x, centre_y = grid.centre(node_id)
        shapes[node_id] = Shape(elements[node_id], Bounds(centre_x - width / 2, centre_y - height / 2, width, height))
    for event_id, host_id in boundary.items():
        host = shapes[host_id].bounds
        index = boundary_count.get(host_id, 0)
        boundary_count[host_id] = index + 1
        centre_x = host.right - AUTO_BOUNDARY_INSET - AUTO_EVENT_SIZE / 2 - index * AUTO_BOUNDARY_SPACING
        shapes[event_id] = Shape(
            elements[event_id],
            Bounds(
                centre_x - AUTO_EVENT_SIZE / 2,
                host.bottom - AUTO_EVENT_SIZE / 2,
                AUTO_EVENT_SIZE,
                AUTO_EVENT_SIZE,
            ),
        )

    layout = Layout(shapes=[shapes[node.id] for node in nodes if node.id in shapes])
    for flow in flows:
        backwards = (flow.source, flow.target) in back_edges or column[flow.target] <= column[flow.source]
        points = _auto_route(shapes[flow.source], shapes[flow.target], grid=grid, backwards=backwards)
        layout.edges.append(Edge(element=flow, points=points))
    return layout


def _depth_first(nodes, successors) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in topological order (ignoring back edges) and the back edges that close loops."""
    incoming = {target for steps in successors.values() for target, _step in steps}
    starts = [n.id for n in nodes if n.kind == "startEvent" and n.id not in incoming]
    # Boundary events come last, so that each is reached from its host and laid out after it.
    unreached = [n.id for n in nodes if n.kind != "boundaryEvent"] + [n.id for n in nodes]
    roots = starts + [n.id for n in nodes if n.id not in incoming and n.id not in starts] + unreached
    visiting, finished, post_order = set(), set(), []
    back_edges: set[tuple[str, str]] = set()
    for root_id in roots:
        if root_id in finished:
            continue
        # Iterative, so a long model cannot hit Python's recursion limit.
        stack = [(root_id, iter(successors[root_id]))]
        visiting.add(root_id)
        while stack:
            node_id, pending = stack[-1]
            for target, _step in pending:
                if target in visiting:
                    back_edges.add((node_id, target))
                elif target not in finished:
                    visiting.add(target)
                    stack.append((target, iter(successors[target])))
                    break
            else:
                stack.pop()
                visiting.discard(node_id)
                finished.add(node_id)
                post_order.append(node_id)
    return post_order[::-1], back_edges


@dataclass
class _Grid:
    """Columns and rows of the automatic layout, and which cells hold a node, so that flows can avoid them."""

    column: dict[str, int]
    row: dict[str, int] = field(default_factory=dict)
    nodes: set[tuple[int, int]] = field(default_factory=set)

    def centre(self, node_id: str) -> tuple[float, float]:
        return (
            AUTO_MARGIN + self.column[node_id] * AUTO_COLUMN_WIDTH + AUTO_COLUMN_WIDTH / 2,
            AUTO_MARGIN + self.row[node_id] * AUTO_ROW_HEIGHT + AUTO_ROW_HEIGHT / 2,
        )

    def cell(self, node_id: str) -> tuple[int, int]:
        return self.column[node_id], self.row[node_id]

    def clear_column(self, column: int, first_row: int, last_row: int) -> bool:
        """Whether no node sits in `column` strictly between the two rows."""
        low, high = sorted((first_row, last_row))
        return all((column, r) not in self.nodes for r in range(low + 1, high))

    def clear_row(self, row: int, first_column: int, last_column: int) -> bool:
        """Whether no node sits in `row` strictly between the two columns."""
        low, high = sorted((first_column, last_column))
        return all((c, row) not in self.nodes for c in range(low + 1, high))

    def column_gap_x(self, column: int) -> float:
        """The x of the empty strip right of `column`, where flows may run vertically without crossing nodes."""
        return AUTO_MARGIN + (column + 1) * AUTO_COLUMN_WIDTH

    def row_gap_y(self, row: int) -> float:
        return AUTO_MARGIN + (row + 1) * AUTO_ROW_HEIGHT - AUTO_BACK_EDGE_CLEARANCE


def _place_rows(order, successors, back_edges, column, boundary) -> _Grid:
    """One row per branch: a node continues its first placed predecessor's row if it is that one's first branch;
    a further branch takes the nearest row below where its cell, the run to it and the drop to it are free."""
    grid = _Grid(column=column)
    blocked: set[tuple[int, int]] = set()  # node cells and the cells the placing flows run through
    predecessors: dict[str, list[str]] = {}
    for node_id in order:
        for target, _step in successors[node_id]:
            if (node_id, target) not in back_edges:
                predecessors.setdefault(target, []).append(node_id)
    for node_id in order:
        if node_id in boundary:
            grid.row[node_id] = grid.row[boundary[node_id]]
            continue
        placed = [p for p in predecessors.get(node_id, []) if p in grid.row]
        if not placed:
            candidate, parent_column, parent_row = 0, column[node_id] - 1, 0
        else:
            parent = placed[0]
            branches = [t for t, step in successors[parent] if step and (parent, t) not in back_edges]
            parent_column, parent_row = grid.cell(parent)
            # What leaves a boundary event is the exceptional path: a row below its host's.
            candidate = parent_row + branches.index(node_id) + (1 if parent in boundary else 0)
        # Prefer a row the flow can drop to straight down the parent's column; else the first whose run is free
        # (the flow then goes round). A row below all used ones always has a free run, so the search ends.
        last_used_row = max((r for _c, r in blocked), default=0)
        first_free_run = None
        while True:
            run = [(c, candidate) for c in range(parent_column + 1, column[node_id] + 1)]
            drop = [(parent_column, r) for r in range(parent_row + 1, candidate + 1)]
            run_free = not any(cell in blocked for cell in run)
            if run_free and not any(cell in grid.nodes for cell in drop):
                break
            if run_free and first_free_run is None:
                first_free_run = candidate
            if candidate > last_used_row:
                candidate = first_free_run
                break
            candidate += 1
        grid.row[node_id] = candidate
        grid.nodes.add((column[node_id], candidate))
        blocked.update((c, candidate) for c in range(parent_column + 1, column[node_id] + 1))
        blocked.add((column[node_id], candidate))
    return grid


def _auto_route(source: Shape, target: Shape, *, grid: _Grid, backwards: bool) -> list[tuple[float, float]]:
    s, t = source.bounds, target.bounds
    (scx, scy), (tcx, tcy) = s.centre, t.centre
    (s_col, s_row), (t_col, t_row) = grid.cell(source.element.id), grid.cell(target.element.id)
    if backwards:  # under both rows, back to the target's bottom
        below = grid.row_gap_y(max(s_row, t_row))
        return [(scx, s.bottom), (scx, below), (tcx, below), (tcx, t.bottom)]
    if source.element.kind == "boundaryEvent":
        if t_row > s_row and grid.clear_column(s_col, s_row, t_row + 1):
            return [(scx, s.bottom), (scx, tcy), (t.x, tcy)]
        # The way round: along the gap under the host's row, then down into the target's top.
        gap_y = grid.row_gap_y(s_row)
        if t_row > s_row and grid.clear_column(t_col, s_row, t_row):
            return [(scx, s.bottom), (scx, gap_y), (tcx, gap_y), (tcx, t.y)]
        gap_x = grid.column_gap_x(s_col)
        return [(scx, s.bottom), (scx, gap_y), (gap_x, gap_y), (gap_x, tcy), (t.x, tcy)]
    if s_row == t_row:
        return [(s.right, scy), (t.x, tcy)]
    if (
        source.element.kind in GATEWAY_KINDS
        and grid.clear_column(s_col, s_row, t_row + 1)
        and grid.clear_row(t_row, s_col, t_col)
    ):
        # A split leaves from the diamond's top or bottom corner.
        return [(scx, s.bottom if tcy > scy else s.y), (scx, tcy), (t.x, tcy)]
    if (
        target.element.kind in GATEWAY_KINDS
        and grid.clear_row(s_row, s_col, t_col + 1)
        and grid.clear_column(t_col, s_row, t_row)
    ):
        # A join is entered at its top or bottom corner.
        return [(s.right, scy), (tcx, scy), (tcx, t.y if tcy > scy else t.bottom)]
    # Change rows in the gap after the source, or, if nodes stand in the target's row, in the gap before the target.
    elbow = grid.column_gap_x(s_col)
    if not grid.clear_row(t_row, s_col, t_col) and grid.clear_row(s_row, s_col, t_col):
        elbow = grid.column_gap_x(t_col - 1)
    return [(s.right, scy), (elbow, scy), (elbow, tcy), (t.x, tcy)]
