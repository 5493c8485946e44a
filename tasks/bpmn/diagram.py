"""Draws a process definition's BPMN diagram as SVG, server-side, with where an instance stands highlighted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.etree import ElementTree

from django.db.models import QuerySet

from core.errors import NotFound
from entitlements.row_scope import exists_in_any_scope
from tasks.models import ACTIVE_TASK_STATUSES, ProcessInstance, TaskStatus, WorkflowTask

from . import engine
from .diagram_layout import (
    CONTAINER_KINDS,
    EVENT_KINDS,
    FLOW_NODE_KINDS,
    GATEWAY_KINDS,
    DiagramError,
    Edge,
    Layout,
    ModelElement,
    Shape,
    diagram_layout,
)

SVG_NS = "http://www.w3.org/2000/svg"

ACTIVE = engine.ELEMENT_ACTIVE
COMPLETED = engine.ELEMENT_COMPLETED
NEUTRAL = "neutral"


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


# --- entry point ----------------------------------------------------------------------------------------------


def process_diagram_svg(*, bpmn_xml: str, element_states: dict[str, str]) -> str:
    """The definition as an SVG document (text), each flow node coloured by its state in `element_states`.

    Uses the model's own diagram (BPMN DI) when it places every node of the process, and lays the process out
    left to right otherwise. Every string from the model reaches the output through ElementTree, which
    escapes it. Raises DiagramError when the XML cannot be read.
    """
    layout = diagram_layout(bpmn_xml=bpmn_xml)
    if not layout.shapes:
        raise DiagramError("the definition has no flow nodes to draw")
    return _render(layout, element_states)


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
    svg = ElementTree.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "viewBox": " ".join(_fmt(v) for v in (x0 - VIEW_PADDING, y0 - VIEW_PADDING, width, height)),
            "width": _fmt(width),
            "height": _fmt(height),
            "class": "bpmn-diagram",
            "role": "img",
            "font-family": FONT_FAMILY,
            "font-size": _fmt(FONT_SIZE),
            "fill": TEXT_COLOUR,
        },
    )
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
        defs,
        "marker",
        id="bpmn-arrow",
        viewBox=f"0 0 {ARROW_SIZE} {ARROW_SIZE}",
        refX=ARROW_SIZE,
        refY=ARROW_SIZE / 2,
        markerWidth=ARROW_SIZE,
        markerHeight=ARROW_SIZE,
        markerUnits="userSpaceOnUse",
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
    _sub(
        group,
        "rect",
        x=b.x,
        y=b.y,
        width=b.width,
        height=b.height,
        fill=POOL_FILL if is_pool else "none",
        stroke=LINE_COLOUR if is_pool else LANE_STROKE,
        stroke_width=LINE_STROKE if is_pool else THIN_STROKE,
    )
    if shape.horizontal:
        if is_pool:
            _sub(
                group,
                "line",
                x1=b.x + LANE_LABEL_BAND,
                y1=b.y,
                x2=b.x + LANE_LABEL_BAND,
                y2=b.bottom,
                stroke=LINE_COLOUR,
                stroke_width=THIN_STROKE,
            )
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
        _sub(
            group,
            "path",
            d=f"M{_fmt(b.x + ANNOTATION_BRACKET)},{_fmt(b.y)} H{_fmt(b.x)} V{_fmt(b.bottom)} "
            f"H{_fmt(b.x + ANNOTATION_BRACKET)}",
            fill="none",
            stroke=LINE_COLOUR,
        )
        lines = _wrap(
            shape.element.name,
            width=b.width - TASK_TEXT_PADDING,
            font_size=SMALL_FONT_SIZE,
            max_lines=max(1, int(b.height // LINE_HEIGHT)),
        )
        _text(group, lines, b.x + TASK_TEXT_PADDING / 2, b.centre[1], anchor="start", font_size=SMALL_FONT_SIZE)
        return
    # Groups and anything this drawing does not know: a dashed outline with the name, so nothing vanishes.
    _sub(
        group,
        "rect",
        x=b.x,
        y=b.y,
        width=b.width,
        height=b.height,
        rx=TASK_CORNER_RADIUS,
        fill="none",
        stroke=LANE_STROKE,
        stroke_dasharray="8 4",
    )
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
        _sub(
            group,
            "circle",
            cx=cx,
            cy=cy,
            r=radius - BOUNDARY_RING_GAP,
            fill="none",
            stroke=palette.stroke,
            stroke_width=LINE_STROKE,
            stroke_dasharray=dash,
        )
    if element.event_definition == "timerEventDefinition":
        dial = radius * EVENT_ICON_RATIO
        _sub(group, "circle", cx=cx, cy=cy, r=dial, fill="#ffffff", stroke=LINE_COLOUR, stroke_width=LINE_STROKE)
        _sub(
            group,
            "path",
            d=TIMER_HANDS_PATH,
            transform=f"translate({_fmt(cx)} {_fmt(cy)}) scale({_fmt(dial)})",
            fill="none",
            stroke=LINE_COLOUR,
            stroke_width=LINE_STROKE / dial,
        )
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
        _sub(
            group,
            "circle",
            cx=cx,
            cy=cy,
            r=b.width * INCLUSIVE_MARKER_RATIO,
            fill="none",
            stroke=LINE_COLOUR,
            stroke_width=INCLUSIVE_MARKER_STROKE,
        )
    _external_label(group, shape)


def _draw_activity(group: ElementTree.Element, shape: Shape, palette: Palette) -> None:
    element, b = shape.element, shape.bounds
    _sub(group, "rect", x=b.x, y=b.y, width=b.width, height=b.height, rx=TASK_CORNER_RADIUS, **_paint(palette))
    if element.kind == "callActivity":
        _sub(
            group,
            "rect",
            x=b.x + BOUNDARY_RING_GAP,
            y=b.y + BOUNDARY_RING_GAP,
            width=b.width - 2 * BOUNDARY_RING_GAP,
            height=b.height - 2 * BOUNDARY_RING_GAP,
            rx=TASK_CORNER_RADIUS - BOUNDARY_RING_GAP,
            fill="none",
            stroke=palette.stroke,
        )
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
        _sub(
            group,
            "path",
            d=f"M{_fmt(mx + size / 2)},{_fmt(my + inset)} V{_fmt(my + size - inset)} "
            f"M{_fmt(mx + inset)},{_fmt(my + size / 2)} H{_fmt(mx + size - inset)}",
            stroke=LINE_COLOUR,
        )
    text_width = b.width - 2 * TASK_TEXT_PADDING
    max_lines = max(1, int((b.height - 2 * TASK_TEXT_PADDING) // LINE_HEIGHT))
    lines = _wrap(element.name or element.id, width=text_width, font_size=FONT_SIZE, max_lines=max_lines)
    _text(group, lines, *b.centre)


def _icon(group: ElementTree.Element, path: str, x: float, y: float) -> None:
    _sub(
        group,
        "path",
        d=path,
        transform=f"translate({_fmt(x)} {_fmt(y)})",
        fill="none",
        stroke=LINE_COLOUR,
        stroke_width=THIN_STROKE,
    )


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
        lines = _wrap(
            edge.element.name, width=EXTERNAL_LABEL_WIDTH, font_size=SMALL_FONT_SIZE, max_lines=EXTERNAL_LABEL_MAX_LINES
        )
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


def _text(
    group: ElementTree.Element,
    lines: list[str],
    x: float,
    centre_y: float,
    *,
    anchor: str = "middle",
    font_size: float = FONT_SIZE,
    transform: str | None = None,
) -> None:
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
        if exists_in_any_scope(ProcessInstance.objects.filter(pk=process_instance_id)):
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
        instance=instance,
        svg=svg,
        problem=problem,
        element_states=states,
        current_tasks=[task for task in tasks if task.status in ACTIVE_TASK_STATUSES],
    )
