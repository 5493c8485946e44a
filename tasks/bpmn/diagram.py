"""Draws a process definition's BPMN diagram as SVG, server-side, with where an instance stands highlighted."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.etree import ElementTree

from django.db.models import QuerySet
from lxml import etree

from core.errors import NotFound

from . import engine
from tasks.models import ACTIVE_TASK_STATUSES, ProcessInstance, TaskStatus, WorkflowTask

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
SVG_NS = "http://www.w3.org/2000/svg"

ACTIVE = engine.ELEMENT_ACTIVE
COMPLETED = engine.ELEMENT_COMPLETED
NEUTRAL = "neutral"

EVENT_KINDS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
GATEWAY_KINDS = frozenset({
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
})
ACTIVITY_KINDS = frozenset({
    "task", "userTask", "scriptTask", "serviceTask", "manualTask", "sendTask", "receiveTask", "businessRuleTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess",
})
FLOW_NODE_KINDS = EVENT_KINDS | GATEWAY_KINDS | ACTIVITY_KINDS
CONTAINER_KINDS = frozenset({"subProcess", "transaction", "adHocSubProcess"})


@dataclass(frozen=True)
class Palette:
    fill: str
    stroke: str
    stroke_width: float


# Active must be unmistakable at a glance and in a black-and-white print: thick and warm. Completed is muted.
STATE_PALETTES = {
    NEUTRAL: Palette(fill="#ffffff", stroke="#3c3c3c", stroke_width=1.5),
    COMPLETED: Palette(fill="#e4f2e7", stroke="#5e9c6e", stroke_width=2),
    ACTIVE: Palette(fill="#ffedcc", stroke="#e07000", stroke_width=4),
}
STATE_LABELS = {ACTIVE: "Current position", COMPLETED: "Completed", NEUTRAL: "Not reached (or skipped)"}
LINE_COLOUR = "#3c3c3c"
TEXT_COLOUR = "#1a1a1a"
POOL_FILL = "#fafafa"
LANE_STROKE = "#9a9a9a"

FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
FONT_SIZE = 12
SMALL_FONT_SIZE = 11
LINE_HEIGHT = 14
# Average glyph width as a share of the font size, for wrapping without measuring fonts on the server.
GLYPH_WIDTH_RATIO = 0.52
# Moves a baseline so that text is centred on its y (SVG has no portable vertical centring).
BASELINE_SHIFT_RATIO = 0.35
ELLIPSIS = "…"

TASK_CORNER_RADIUS = 10
TASK_TEXT_PADDING = 8
END_EVENT_STROKE_WIDTH = 4
BOUNDARY_RING_GAP = 3
EVENT_ICON_RATIO = 0.55  # the timer dial's radius as a share of the event's
GATEWAY_MARKER_RATIO = 0.2  # half the X marker's width as a share of the gateway's width
PARALLEL_MARKER_RATIO = 0.27  # one arm of the + marker as a share of the gateway's width
GATEWAY_MARKER_STROKE = 3.5
INCLUSIVE_MARKER_RATIO = 0.24
INCLUSIVE_MARKER_STROKE = 2.5
COLLAPSED_MARKER_SIZE = 14
COLLAPSED_MARKER_INSET = 3
ICON_INSET = 6
# Glyphs as path data in a 12 x 15 box at the task's top-left corner: a person, a script page.
TASK_ICONS = {
    "userTask": "M2.5,4 a3.5,3.5 0 1,0 7,0 a3.5,3.5 0 1,0 -7,0 M0,15 C0,8 12,8 12,15 Z",
    "scriptTask": "M0,0 H12 V15 H0 Z M3,4 H9 M3,7.5 H9 M3,11 H9",
}
# A clock's hands in a unit circle, scaled to the timer's dial.
TIMER_HANDS_PATH = "M0,-0.75 L0,0 L0.55,0.2"
LINE_STROKE = 1.5
THIN_STROKE = 1
NON_INTERRUPTING_DASH = "4 3"
LANE_LABEL_BAND = 30  # what BPMN editors reserve for a pool's or lane's name
EXTERNAL_LABEL_WIDTH = 100  # events and gateways without label bounds: their name wraps to this width
EXTERNAL_LABEL_GAP = 6
EXTERNAL_LABEL_MAX_LINES = 3
ANNOTATION_BRACKET = 10
ARROW_SIZE = 10
DEFAULT_FLOW_SLASH_AT = 10  # how far along a default flow its slash sits
DEFAULT_FLOW_SLASH_HALF = 6
VIEW_PADDING = 20
COORDINATE_DECIMALS = 1

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


# --- entry point ----------------------------------------------------------------------------------------------


def process_diagram_svg(*, bpmn_xml: str, element_states: dict[str, str]) -> str:
    """The definition as an SVG document (text), each flow node coloured by its state in `element_states`.

    Uses the model's own diagram (BPMN DI) when it places every node of the process, and lays the process out
    left to right otherwise. Every string from the model reaches the output through ElementTree, which
    escapes it. Raises DiagramError when the XML cannot be read.
    """
    root = _read_xml(bpmn_xml)
    elements = _model_elements(root)
    layout = _di_layout(root, elements) or _auto_layout(root, elements)
    if not layout.shapes:
        raise DiagramError("the definition has no flow nodes to draw")
    return _render(layout, element_states)


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
        layout.shapes.append(Shape(
            element=element, bounds=bounds, label=_label_bounds(shape),
            expanded=shape.get("isExpanded") == "true", horizontal=shape.get("isHorizontal") != "false",
        ))
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
        shapes[event_id] = Shape(elements[event_id], Bounds(
            centre_x - AUTO_EVENT_SIZE / 2, host.bottom - AUTO_EVENT_SIZE / 2, AUTO_EVENT_SIZE, AUTO_EVENT_SIZE,
        ))

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
    if source.element.kind in GATEWAY_KINDS and grid.clear_column(s_col, s_row, t_row + 1) \
            and grid.clear_row(t_row, s_col, t_col):
        # A split leaves from the diamond's top or bottom corner.
        return [(scx, s.bottom if tcy > scy else s.y), (scx, tcy), (t.x, tcy)]
    if target.element.kind in GATEWAY_KINDS and grid.clear_row(s_row, s_col, t_col + 1) \
            and grid.clear_column(t_col, s_row, t_row):
        # A join is entered at its top or bottom corner.
        return [(s.right, scy), (tcx, scy), (tcx, t.y if tcy > scy else t.bottom)]
    # Change rows in the gap after the source, or, if nodes stand in the target's row, in the gap before the target.
    elbow = grid.column_gap_x(s_col)
    if not grid.clear_row(t_row, s_col, t_col) and grid.clear_row(s_row, s_col, t_col):
        elbow = grid.column_gap_x(t_col - 1)
    return [(s.right, scy), (elbow, scy), (elbow, tcy), (t.x, tcy)]


# --- drawing ------------------------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    rounded = round(value, COORDINATE_DECIMALS)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def _sub(parent: ElementTree.Element, tag: str, **attributes) -> ElementTree.Element:
    """A child element; attribute names use '_' for '-', values may be numbers."""
    clean = {
        key.rstrip("_").replace("_", "-"): _fmt(value) if isinstance(value, (int, float)) else value
        for key, value in attributes.items()
        if value is not None
    }
    return ElementTree.SubElement(parent, tag, clean)


def _state_of(element: ModelElement, element_states: dict[str, str]) -> str:
    state = element_states.get(element.id, NEUTRAL)
    return state if state in STATE_PALETTES else NEUTRAL


def _render(layout: Layout, element_states: dict[str, str]) -> str:
    x0, y0, x1, y1 = _extent(layout)
    width, height = x1 - x0 + 2 * VIEW_PADDING, y1 - y0 + 2 * VIEW_PADDING
    svg = ElementTree.Element("svg", {
        "xmlns": SVG_NS,
        "viewBox": " ".join(_fmt(v) for v in (x0 - VIEW_PADDING, y0 - VIEW_PADDING, width, height)),
        "width": _fmt(width),
        "height": _fmt(height),
        "class": "bpmn-diagram",
        "role": "img",
        "font-family": FONT_FAMILY,
        "font-size": _fmt(FONT_SIZE),
        "fill": TEXT_COLOUR,
    })
    _sub(svg, "title").text = "BPMN diagram"
    _arrow_marker(svg)

    pools = [s for s in layout.shapes if s.element.kind in ("participant", "lane")]
    nodes = [s for s in layout.shapes if s.element.kind in FLOW_NODE_KINDS]
    others = [s for s in layout.shapes if s not in pools and s not in nodes]
    # Containers first, biggest first, so that what they contain is drawn over them.
    for shape in sorted(pools, key=lambda s: (s.element.kind != "participant", -s.bounds.width * s.bounds.height)):
        _draw_pool_or_lane(svg, shape)
    for shape in others:
        _draw_artifact(svg, shape)
    containers = [s for s in nodes if s.element.kind in CONTAINER_KINDS and s.expanded]
    for shape in sorted(containers, key=lambda s: -s.bounds.width * s.bounds.height):
        _draw_node(svg, shape, _state_of(shape.element, element_states))
    plain = [s for s in nodes if s not in containers]
    for shape in sorted(plain, key=lambda s: s.element.kind == "boundaryEvent"):  # boundary events on their host
        _draw_node(svg, shape, _state_of(shape.element, element_states))
    for edge in layout.edges:
        _draw_edge(svg, edge)
    return ElementTree.tostring(svg, encoding="unicode")


def _extent(layout: Layout) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for shape in layout.shapes:
        for box in (shape.bounds, shape.label) if shape.label else (shape.bounds,):
            xs += [box.x, box.right]
            ys += [box.y, box.bottom]
        if shape.label is None and shape.element.kind in EVENT_KINDS | GATEWAY_KINDS and shape.element.name:
            # Labels drawn under the shape: leave them room.
            centre_x = shape.bounds.centre[0]
            xs += [centre_x - EXTERNAL_LABEL_WIDTH / 2, centre_x + EXTERNAL_LABEL_WIDTH / 2]
            ys.append(shape.bounds.bottom + EXTERNAL_LABEL_GAP + EXTERNAL_LABEL_MAX_LINES * LINE_HEIGHT)
    for edge in layout.edges:
        xs += [p[0] for p in edge.points]
        ys += [p[1] for p in edge.points]
        if edge.label is not None:
            xs += [edge.label.x, edge.label.right]
            ys += [edge.label.y, edge.label.bottom]
    return min(xs), min(ys), max(xs), max(ys)


def _arrow_marker(svg: ElementTree.Element) -> None:
    defs = _sub(svg, "defs")
    marker = _sub(
        defs, "marker", id="bpmn-arrow", viewBox=f"0 0 {ARROW_SIZE} {ARROW_SIZE}", refX=ARROW_SIZE,
        refY=ARROW_SIZE / 2, markerWidth=ARROW_SIZE, markerHeight=ARROW_SIZE, markerUnits="userSpaceOnUse",
        orient="auto",
    )
    _sub(marker, "path", d=f"M0,0 L{ARROW_SIZE},{ARROW_SIZE / 2} L0,{ARROW_SIZE} z", fill=LINE_COLOUR)


def _group(svg: ElementTree.Element, shape: Shape, css_class: str, state: str | None = None) -> ElementTree.Element:
    group = _sub(svg, "g", class_=css_class, data_element_id=shape.element.id, data_state=state)
    title = shape.element.name or shape.element.id
    _sub(group, "title").text = f"{title} ({STATE_LABELS[state].lower()})" if state else title
    return group


def _draw_pool_or_lane(svg: ElementTree.Element, shape: Shape) -> None:
    b = shape.bounds
    group = _group(svg, shape, f"bpmn-{'pool' if shape.element.kind == 'participant' else 'lane'}")
    is_pool = shape.element.kind == "participant"
    _sub(group, "rect", x=b.x, y=b.y, width=b.width, height=b.height, fill=POOL_FILL if is_pool else "none",
         stroke=LINE_COLOUR if is_pool else LANE_STROKE, stroke_width=LINE_STROKE if is_pool else THIN_STROKE)
    if shape.horizontal:
        if is_pool:
            _sub(group, "line", x1=b.x + LANE_LABEL_BAND, y1=b.y, x2=b.x + LANE_LABEL_BAND, y2=b.bottom,
                 stroke=LINE_COLOUR, stroke_width=THIN_STROKE)
        centre_x, centre_y = b.x + LANE_LABEL_BAND / 2, b.y + b.height / 2
        lines = _wrap(shape.element.name, width=b.height - 2 * TASK_TEXT_PADDING, font_size=FONT_SIZE, max_lines=1)
        _text(group, lines, centre_x, centre_y, transform=f"rotate(-90 {_fmt(centre_x)} {_fmt(centre_y)})")
    else:
        lines = _wrap(shape.element.name, width=b.width - 2 * TASK_TEXT_PADDING, font_size=FONT_SIZE, max_lines=1)
        _text(group, lines, b.centre[0], b.y + LANE_LABEL_BAND / 2)


def _draw_artifact(svg: ElementTree.Element, shape: Shape) -> None:
    b = shape.bounds
    group = _group(svg, shape, f"bpmn-artifact bpmn-{shape.element.kind}")
    if shape.element.kind == "textAnnotation":
        _sub(group, "path", d=f"M{_fmt(b.x + ANNOTATION_BRACKET)},{_fmt(b.y)} H{_fmt(b.x)} V{_fmt(b.bottom)} "
                              f"H{_fmt(b.x + ANNOTATION_BRACKET)}", fill="none", stroke=LINE_COLOUR)
        lines = _wrap(shape.element.name, width=b.width - TASK_TEXT_PADDING, font_size=SMALL_FONT_SIZE,
                      max_lines=max(1, int(b.height // LINE_HEIGHT)))
        _text(group, lines, b.x + TASK_TEXT_PADDING / 2, b.centre[1], anchor="start", font_size=SMALL_FONT_SIZE)
        return
    # Groups and anything this drawing does not know: a dashed outline with the name, so nothing vanishes.
    _sub(group, "rect", x=b.x, y=b.y, width=b.width, height=b.height, rx=TASK_CORNER_RADIUS, fill="none",
         stroke=LANE_STROKE, stroke_dasharray="8 4")
    if shape.element.name:
        _text(group, [shape.element.name], b.centre[0], b.y + LINE_HEIGHT, font_size=SMALL_FONT_SIZE)


def _draw_node(svg: ElementTree.Element, shape: Shape, state: str) -> None:
    kind = shape.element.kind
    group = _group(svg, shape, f"bpmn-node bpmn-{kind} is-{state}", state)
    palette = STATE_PALETTES[state]
    if kind in EVENT_KINDS:
        _draw_event(group, shape, palette)
    elif kind in GATEWAY_KINDS:
        _draw_gateway(group, shape, palette)
    else:
        _draw_activity(group, shape, palette)


def _paint(palette: Palette, *, stroke_width: float | None = None) -> dict:
    return {"fill": palette.fill, "stroke": palette.stroke, "stroke_width": stroke_width or palette.stroke_width}


def _draw_event(group: ElementTree.Element, shape: Shape, palette: Palette) -> None:
    element, b = shape.element, shape.bounds
    (cx, cy), radius = b.centre, min(b.width, b.height) / 2
    # A non-interrupting boundary event is drawn dashed, as BPMN 2.0 prescribes.
    dash = None if element.interrupting else NON_INTERRUPTING_DASH
    width = max(END_EVENT_STROKE_WIDTH, palette.stroke_width) if element.kind == "endEvent" else None
    _sub(group, "circle", cx=cx, cy=cy, r=radius, stroke_dasharray=dash, **_paint(palette, stroke_width=width))
    if element.kind in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"):
        _sub(group, "circle", cx=cx, cy=cy, r=radius - BOUNDARY_RING_GAP, fill="none", stroke=palette.stroke,
             stroke_width=LINE_STROKE, stroke_dasharray=dash)
    if element.event_definition == "timerEventDefinition":
        dial = radius * EVENT_ICON_RATIO
        _sub(group, "circle", cx=cx, cy=cy, r=dial, fill="#ffffff", stroke=LINE_COLOUR, stroke_width=LINE_STROKE)
        _sub(group, "path", d=TIMER_HANDS_PATH, transform=f"translate({_fmt(cx)} {_fmt(cy)}) scale({_fmt(dial)})",
             fill="none", stroke=LINE_COLOUR, stroke_width=LINE_STROKE / dial)
    _external_label(group, shape)


def _draw_gateway(group: ElementTree.Element, shape: Shape, palette: Palette) -> None:
    b = shape.bounds
    cx, cy = b.centre
    diamond = f"{_fmt(cx)},{_fmt(b.y)} {_fmt(b.right)},{_fmt(cy)} {_fmt(cx)},{_fmt(b.bottom)} {_fmt(b.x)},{_fmt(cy)}"
    _sub(group, "polygon", points=diamond, **_paint(palette))
    half = b.width * GATEWAY_MARKER_RATIO
    marker = {"stroke": LINE_COLOUR, "stroke_width": GATEWAY_MARKER_STROKE, "stroke_linecap": "round"}
    if shape.element.kind == "exclusiveGateway":
        _sub(group, "line", x1=cx - half, y1=cy - half, x2=cx + half, y2=cy + half, **marker)
        _sub(group, "line", x1=cx - half, y1=cy + half, x2=cx + half, y2=cy - half, **marker)
    elif shape.element.kind == "parallelGateway":
        arm = b.width * PARALLEL_MARKER_RATIO
        _sub(group, "line", x1=cx, y1=cy - arm, x2=cx, y2=cy + arm, **marker)
        _sub(group, "line", x1=cx - arm, y1=cy, x2=cx + arm, y2=cy, **marker)
    elif shape.element.kind == "inclusiveGateway":
        _sub(group, "circle", cx=cx, cy=cy, r=b.width * INCLUSIVE_MARKER_RATIO, fill="none", stroke=LINE_COLOUR,
             stroke_width=INCLUSIVE_MARKER_STROKE)
    _external_label(group, shape)


def _draw_activity(group: ElementTree.Element, shape: Shape, palette: Palette) -> None:
    element, b = shape.element, shape.bounds
    _sub(group, "rect", x=b.x, y=b.y, width=b.width, height=b.height, rx=TASK_CORNER_RADIUS, **_paint(palette))
    if element.kind == "callActivity":
        _sub(group, "rect", x=b.x + BOUNDARY_RING_GAP, y=b.y + BOUNDARY_RING_GAP,
             width=b.width - 2 * BOUNDARY_RING_GAP, height=b.height - 2 * BOUNDARY_RING_GAP,
             rx=TASK_CORNER_RADIUS - BOUNDARY_RING_GAP, fill="none", stroke=palette.stroke)
    if element.kind in CONTAINER_KINDS and shape.expanded:
        lines = _wrap(element.name, width=b.width - 2 * TASK_TEXT_PADDING, font_size=FONT_SIZE, max_lines=1)
        _text(group, lines, b.x + TASK_TEXT_PADDING, b.y + TASK_TEXT_PADDING + LINE_HEIGHT / 2, anchor="start")
        return
    if element.kind in TASK_ICONS:
        _icon(group, TASK_ICONS[element.kind], b.x + ICON_INSET, b.y + ICON_INSET)
    if element.kind in CONTAINER_KINDS | {"callActivity"}:  # collapsed: the [+] marker
        size = COLLAPSED_MARKER_SIZE
        mx, my = b.centre[0] - size / 2, b.bottom - size - BOUNDARY_RING_GAP
        _sub(group, "rect", x=mx, y=my, width=size, height=size, fill="none", stroke=LINE_COLOUR)
        inset = COLLAPSED_MARKER_INSET
        _sub(group, "path", d=f"M{_fmt(mx + size / 2)},{_fmt(my + inset)} V{_fmt(my + size - inset)} "
                              f"M{_fmt(mx + inset)},{_fmt(my + size / 2)} H{_fmt(mx + size - inset)}",
             stroke=LINE_COLOUR)
    text_width = b.width - 2 * TASK_TEXT_PADDING
    max_lines = max(1, int((b.height - 2 * TASK_TEXT_PADDING) // LINE_HEIGHT))
    lines = _wrap(element.name or element.id, width=text_width, font_size=FONT_SIZE, max_lines=max_lines)
    _text(group, lines, *b.centre)


def _icon(group: ElementTree.Element, path: str, x: float, y: float) -> None:
    _sub(group, "path", d=path, transform=f"translate({_fmt(x)} {_fmt(y)})", fill="none", stroke=LINE_COLOUR,
         stroke_width=THIN_STROKE)


def _external_label(group: ElementTree.Element, shape: Shape) -> None:
    """An event's or gateway's name: in its label bounds when the model has them, else under the shape."""
    if not shape.element.name:
        return
    # The modeller measured its label bounds with its own font; ours is estimated, so they only place the text.
    box = shape.label or shape.bounds
    width = max(box.width, EXTERNAL_LABEL_WIDTH) if shape.label else EXTERNAL_LABEL_WIDTH
    lines = _wrap(shape.element.name, width=width, font_size=SMALL_FONT_SIZE, max_lines=EXTERNAL_LABEL_MAX_LINES)
    top = box.y if shape.label else shape.bounds.bottom + EXTERNAL_LABEL_GAP
    centre_y = top + len(lines) * LINE_HEIGHT / 2
    _text(group, lines, box.centre[0], centre_y, font_size=SMALL_FONT_SIZE)


def _draw_edge(svg: ElementTree.Element, edge: Edge) -> None:
    kind = edge.element.kind
    group = _sub(svg, "g", class_=f"bpmn-edge bpmn-{kind}", data_element_id=edge.element.id)
    points = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in edge.points)
    style = {"fill": "none", "stroke": LINE_COLOUR, "stroke_width": LINE_STROKE, "stroke_linejoin": "round"}
    if kind == "sequenceFlow":
        _sub(group, "polyline", points=points, marker_end="url(#bpmn-arrow)", **style)
        if edge.element.is_default_flow:
            _default_slash(group, edge.points)
    elif kind == "messageFlow":
        _sub(group, "polyline", points=points, stroke_dasharray="6 4", marker_end="url(#bpmn-arrow)", **style)
    else:  # associations
        _sub(group, "polyline", points=points, stroke_dasharray="2 3", **{**style, "stroke_width": THIN_STROKE})
    if edge.element.name:
        if edge.label is not None:
            x, y = edge.label.centre
        else:
            middle = len(edge.points) // 2
            (ax, ay), (bx, by) = edge.points[middle - 1], edge.points[middle]
            x, y = (ax + bx) / 2, (ay + by) / 2 - LINE_HEIGHT / 2
        lines = _wrap(edge.element.name, width=EXTERNAL_LABEL_WIDTH, font_size=SMALL_FONT_SIZE,
                      max_lines=EXTERNAL_LABEL_MAX_LINES)
        _text(group, lines, x, y, font_size=SMALL_FONT_SIZE)


def _default_slash(group: ElementTree.Element, points: list[tuple[float, float]]) -> None:
    """BPMN marks a gateway's default flow with a slash near where it leaves."""
    (ax, ay), (bx, by) = points[0], points[1]
    length = math.hypot(bx - ax, by - ay)
    if length < 2 * DEFAULT_FLOW_SLASH_AT:
        return
    ux, uy = (bx - ax) / length, (by - ay) / length
    cx, cy = ax + ux * DEFAULT_FLOW_SLASH_AT, ay + uy * DEFAULT_FLOW_SLASH_AT
    # Perpendicular, tilted forward by the same amount: a slash, not a bar.
    dx, dy = (-uy + ux) * DEFAULT_FLOW_SLASH_HALF / math.sqrt(2), (ux + uy) * DEFAULT_FLOW_SLASH_HALF / math.sqrt(2)
    _sub(group, "line", x1=cx - dx, y1=cy - dy, x2=cx + dx, y2=cy + dy, stroke=LINE_COLOUR, stroke_width=LINE_STROKE)


# --- text -------------------------------------------------------------------------------------------------------


def _wrap(text: str, *, width: float, font_size: float, max_lines: int) -> list[str]:
    """Greedy word wrap by estimated glyph width; a word longer than a line is cut; overflow ends in an ellipsis."""
    per_line = max(1, int(width // (font_size * GLYPH_WIDTH_RATIO)))
    lines: list[str] = []
    for word in text.split():
        while len(word) > per_line:
            lines.append(word[:per_line])
            word = word[per_line:]
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        elif word:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, per_line - len(ELLIPSIS))].rstrip() + ELLIPSIS
    return lines


def _text(group: ElementTree.Element, lines: list[str], x: float, centre_y: float, *, anchor: str = "middle",
          font_size: float = FONT_SIZE, transform: str | None = None) -> None:
    if not lines:
        return
    text = _sub(group, "text", x=x, text_anchor=anchor, font_size=font_size, transform=transform)
    first = centre_y - (len(lines) - 1) * LINE_HEIGHT / 2 + font_size * BASELINE_SHIFT_RATIO
    for index, line in enumerate(lines):
        _sub(text, "tspan", x=x, y=first + index * LINE_HEIGHT).text = line


# --- where an instance stands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessDiagram:
    instance: ProcessInstance
    svg: str  # "" when the definition cannot be drawn; `problem` says why
    problem: str
    element_states: dict[str, str]
    current_tasks: list[WorkflowTask]  # open and claimed, oldest first


def instance_element_states(*, instance: ProcessInstance, tasks: list[WorkflowTask]) -> dict[str, str]:
    """BPMN element id -> ACTIVE | COMPLETED for an instance, from its task rows and its engine state.

    The rows are the truth for user tasks (a claimed task is still open to the engine); the engine adds what
    has no row: passed events and gateways, script tasks, waiting timers.
    """
    states: dict[str, str] = {}
    spec, state = instance.definition.engine_spec, instance.engine_state
    if spec and state:
        try:
            states = engine.element_states(spec=spec, state=state)
        except engine.EngineError:
            states = {}  # a state this engine cannot read still leaves the rows to show where work stands
    for task in tasks:
        if not task.task_definition_key:
            continue
        if task.status in ACTIVE_TASK_STATUSES:
            states[task.task_definition_key] = ACTIVE
        elif task.status == TaskStatus.COMPLETED:
            states.setdefault(task.task_definition_key, COMPLETED)
    return states


def process_diagram_for(*, instances: QuerySet, process_instance_id: int) -> ProcessDiagram:
    """One instance's diagram and current tasks, fetched from `instances` (the caller's scoped rows, such as the
    console's supervised processes) in one call: outside them it does not exist (NotFound). Two queries."""
    instance = instances.select_related("definition").filter(pk=process_instance_id).first()
    if instance is None:
        error = NotFound(f"process {process_instance_id} not found", code="process_not_found")
        if ProcessInstance.objects.filter(pk=process_instance_id).exists():
            error.denial = {"process_instance_id": process_instance_id}
        raise error
    tasks = list(
        WorkflowTask.objects.filter(process_instance=instance).select_related("assignee").order_by("created_at", "pk")
    )
    states = instance_element_states(instance=instance, tasks=tasks)
    try:
        svg, problem = process_diagram_svg(bpmn_xml=instance.definition.bpmn_xml, element_states=states), ""
    except DiagramError as exc:
        svg, problem = "", exc.detail
    return ProcessDiagram(
        instance=instance, svg=svg, problem=problem, element_states=states,
        current_tasks=[task for task in tasks if task.status in ACTIVE_TASK_STATUSES],
    )
