"""Process mining drawn on a definition's BPMN diagram: the sequence flows a move between two activities took, and
the heat overlay (activities coloured by frequency or duration, flows labelled and thickened by count, the
bottleneck outlined).

The overlay post-processes the SVG of `process_diagram_svg` (each node and flow is a <g data-element-id=…>), so the
drawing itself stays in one place (diagram.py) and this module only recolours, labels and marks it.

Placing a move on the diagram: the task rows say which activity followed which in an instance, not which gateway
branch or event led there. A move A → B is placed on the sequence flows of the one path from A (or a boundary event
on A) to B that passes through no other user task; a move from the start is a path from a start event, a move to
the end a path to an end event. When there is no such path, or more than one (two branches of a gateway that meet
again before B, a parallel split whose branches interleave), the move is not placed and the page lists it as such.
Parallel branches interleave their tasks in creation order, so their moves are the order work arrived, not a flow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree import ElementTree

from .diagram import SVG_NS, process_diagram_svg
from .diagram_layout import Layout, diagram_layout

# The element kinds that become task rows; every other node is passed through when placing a move.
ACTIVITY_KINDS = frozenset({"userTask"})
START = ""  # the mining views' source_key of an instance's first move and target_key of its last
MAX_PATHS = 2  # enough to tell one path from several

# ColorBrewer's YlOrRd, its lighter five: dark text stays readable on each step.
HEAT_RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c")
HEAT_STROKE = "#b35806"
FLOW_COLOUR = "#08519c"
FLOW_MIN_WIDTH = 1.5
FLOW_MAX_WIDTH = 9.0
FLOW_LABEL_SIZE = 12
FLOW_LABEL_AT = 1 / 3  # how far along its longest segment a flow's count sits
FLOW_LABEL_OFFSET = 6
BOTTLENECK_COLOUR = "#c00000"
BOTTLENECK_GAP = 6
BOTTLENECK_STROKE = 4
BOTTLENECK_LABEL = "Bottleneck"
LABEL_HALO = "#ffffff"
LABEL_HALO_WIDTH = 4

ElementTree.register_namespace("", SVG_NS)


# --- placing moves on the diagram -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowGraph:
    kinds: dict[str, str]  # node id -> kind
    names: dict[str, str]  # node id -> name (or id)
    outgoing: dict[str, list[tuple[str, str]]]  # node id -> [(flow id, target id)]
    boundary: dict[str, list[str]]  # activity id -> its boundary events

    @classmethod
    def of_layout(cls, layout: Layout) -> FlowGraph:
        kinds, names, boundary = {}, {}, {}
        for shape in layout.shapes:
            element = shape.element
            kinds[element.id] = element.kind
            names[element.id] = element.name or element.id
            if element.kind == "boundaryEvent" and element.attached_to:
                boundary.setdefault(element.attached_to, []).append(element.id)
        outgoing: dict[str, list[tuple[str, str]]] = {}
        for edge in layout.edges:
            element = edge.element
            if element.kind == "sequenceFlow" and element.source and element.target:
                outgoing.setdefault(element.source, []).append((element.id, element.target))
        return cls(kinds=kinds, names=names, outgoing=outgoing, boundary=boundary)

    @property
    def activities(self) -> list[str]:
        return [node for node, kind in self.kinds.items() if kind in ACTIVITY_KINDS]

    def path(self, source_key: str, target_key: str) -> list[str] | None:
        """The sequence flows of the one path from `source_key` to `target_key` through no other activity (START:
        from a start event, to an end event), or None when there is none or more than one."""
        if source_key == START:
            origins = [node for node, kind in self.kinds.items() if kind == "startEvent"]
        else:
            origins = [source_key, *self.boundary.get(source_key, [])]
        found: list[list[str]] = []
        for origin in origins:
            self._walk(origin, target_key, [], {origin}, found)
            if len(found) >= MAX_PATHS:
                return None
        return found[0] if len(found) == 1 else None

    def _walk(self, node: str, target: str, flows: list[str], seen: set[str], found: list[list[str]]) -> None:
        for flow_id, successor in self.outgoing.get(node, []):
            if len(found) >= MAX_PATHS:
                return
            kind = self.kinds.get(successor, "")
            if (target == START and kind == "endEvent") or successor == target:
                found.append([*flows, flow_id])
            elif kind in ACTIVITY_KINDS or successor in seen:
                continue
            else:
                self._walk(successor, target, [*flows, flow_id], seen | {successor}, found)


def flow_graph(*, bpmn_xml: str) -> FlowGraph:
    """The definition's nodes and sequence flows as drawn (raises DiagramError when the XML cannot be read)."""
    return FlowGraph.of_layout(diagram_layout(bpmn_xml=bpmn_xml))


# --- the overlay ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeHeat:
    share: float  # 0..1 of the highest value shown
    note: str  # appended to the node's title, e.g. "12 completed; p90 2 h 10 min at it"


def heat_colour(share: float) -> str:
    step = min(len(HEAT_RAMP) - 1, max(0, int(share * len(HEAT_RAMP))))
    return HEAT_RAMP[step]


def flow_width(taken: int, most: int) -> float:
    if most <= 0:
        return FLOW_MIN_WIDTH
    return FLOW_MIN_WIDTH + (FLOW_MAX_WIDTH - FLOW_MIN_WIDTH) * taken / most


def mining_overlay_svg(
    *, bpmn_xml: str, heat: dict[str, NodeHeat], flows_taken: dict[str, int], bottleneck: str | None
) -> str:
    """The diagram as SVG text with the heat overlay. Raises DiagramError when it cannot be drawn."""
    svg = ElementTree.fromstring(process_diagram_svg(bpmn_xml=bpmn_xml, element_states={}))
    title = svg.find(_tag("title"))
    if title is not None:
        title.text = "BPMN diagram with process mining overlay"
    groups = {g.get("data-element-id"): g for g in svg.iter(_tag("g")) if g.get("data-element-id")}
    for element_id, node_heat in heat.items():
        group = groups.get(element_id)
        if group is None or "bpmn-node" not in group.get("class", ""):
            continue
        shape = _first(group, ("rect", "circle", "polygon"))
        if shape is not None:
            shape.set("fill", heat_colour(node_heat.share))
            shape.set("stroke", HEAT_STROKE)
        group.set("data-heat", f"{node_heat.share:.3f}")
        _append_title(group, node_heat.note)
    most = max(flows_taken.values(), default=0)
    for flow_id, taken in flows_taken.items():
        group = groups.get(flow_id)
        if group is None:
            continue
        _label_flow(svg, group, taken, most)
    if bottleneck and bottleneck in groups:
        _mark_bottleneck(svg, groups[bottleneck])
    return ElementTree.tostring(svg, encoding="unicode")


def _tag(name: str) -> str:
    return f"{{{SVG_NS}}}{name}"


def _first(group: ElementTree.Element, names: Iterable[str]) -> ElementTree.Element | None:
    for child in group:
        if child.tag in {_tag(name) for name in names}:
            return child
    return None


def _append_title(group: ElementTree.Element, note: str) -> None:
    title = group.find(_tag("title"))
    if title is None:
        title = ElementTree.Element(_tag("title"))
        group.insert(0, title)
    title.text = f"{title.text}: {note}" if title.text else note


def _points(polyline: ElementTree.Element) -> list[tuple[float, float]]:
    pairs = (point.split(",") for point in polyline.get("points", "").split())
    return [(float(x), float(y)) for x, y in pairs]


def _label_flow(svg: ElementTree.Element, group: ElementTree.Element, taken: int, most: int) -> None:
    line = _first(group, ("polyline",))
    if line is None:
        return
    line.set("stroke", FLOW_COLOUR)
    line.set("stroke-width", f"{flow_width(taken, most):.1f}")
    group.set("data-taken", str(taken))
    _append_title(group, f"taken {taken} times")
    points = _points(line)
    if len(points) < 2:
        return
    # The label sits beside the flow's longest segment, a third of the way along (a flow's name sits at its middle),
    # above a horizontal segment and right of a vertical one, over a white halo so it reads across other lines.
    segments = zip(points, points[1:], strict=False)
    (ax, ay), (bx, by) = max(segments, key=lambda s: abs(s[1][0] - s[0][0]) + abs(s[1][1] - s[0][1]))
    x, y = ax + (bx - ax) * FLOW_LABEL_AT, ay + (by - ay) * FLOW_LABEL_AT
    horizontal = abs(bx - ax) >= abs(by - ay)
    label = ElementTree.SubElement(
        group,
        _tag("text"),
        {
            "x": f"{x if horizontal else x + FLOW_LABEL_OFFSET:.1f}",
            "y": f"{y - FLOW_LABEL_OFFSET if horizontal else y + FLOW_LABEL_SIZE / 3:.1f}",
            "text-anchor": "middle" if horizontal else "start",
            "font-size": str(FLOW_LABEL_SIZE),
            "font-weight": "bold",
            "fill": FLOW_COLOUR,
            "stroke": LABEL_HALO,
            "stroke-width": str(LABEL_HALO_WIDTH),
            "paint-order": "stroke",
            "class": "flow-count",
        },
    )
    label.text = str(taken)


def _mark_bottleneck(svg: ElementTree.Element, group: ElementTree.Element) -> None:
    rect = _first(group, ("rect",))
    if rect is None:
        return
    x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
    width, height = float(rect.get("width", 0)), float(rect.get("height", 0))
    group.set("data-bottleneck", "true")
    _append_title(group, BOTTLENECK_LABEL.lower())
    mark = ElementTree.SubElement(svg, _tag("g"), {"class": "bottleneck-mark", "aria-label": BOTTLENECK_LABEL})
    ElementTree.SubElement(mark, _tag("title")).text = BOTTLENECK_LABEL
    ElementTree.SubElement(
        mark,
        _tag("rect"),
        {
            "x": f"{x - BOTTLENECK_GAP:.1f}",
            "y": f"{y - BOTTLENECK_GAP:.1f}",
            "width": f"{width + 2 * BOTTLENECK_GAP:.1f}",
            "height": f"{height + 2 * BOTTLENECK_GAP:.1f}",
            "rx": "14",
            "fill": "none",
            "stroke": BOTTLENECK_COLOUR,
            "stroke-width": str(BOTTLENECK_STROKE),
            "stroke-dasharray": "10 5",
        },
    )
    text = ElementTree.SubElement(
        mark,
        _tag("text"),
        {
            "x": f"{x + width / 2:.1f}",
            "y": f"{y - BOTTLENECK_GAP - 5:.1f}",
            "text-anchor": "middle",
            "font-weight": "bold",
            "fill": BOTTLENECK_COLOUR,
            "stroke": LABEL_HALO,
            "stroke-width": str(LABEL_HALO_WIDTH),
            "paint-order": "stroke",
        },
    )
    text.text = f"⚠ {BOTTLENECK_LABEL}"
