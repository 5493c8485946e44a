"""/metrics in Prometheus text format, its access rule, and the request-latency middleware.

Access: a client whose address (REMOTE_ADDR, never a forwarded header) is in METRICS_ALLOWED_NETWORKS, or any
client presenting `Authorization: Bearer <METRICS_TOKEN>` when a token is set. Anything else gets 404, so the
endpoint is not advertised.

Workflow figures are read from the database at scrape time (tasks/metrics.py), so all gunicorn workers agree.
Request latency is a prometheus_client histogram in each process; with several workers set
PROMETHEUS_MULTIPROC_DIR (an empty directory, cleared at deploy) and the scrape aggregates every worker's
histogram; without it a scrape sees the answering worker's only.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

DEFAULT_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]
METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Events exported as their own counters (the claims, completions, escalations), besides the total by type.
NAMED_COUNTERS = {
    "CLAIMED": ("workflow_task_claims", "Tasks claimed (by a caseworker or by push routing)."),
    "COMPLETED": ("workflow_task_completions", "Tasks completed."),
    "ESCALATED": ("workflow_task_escalations", "Tasks escalated (by a supervisor or the SLA sweep)."),
}

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it.",
    ["method", "route", "status_class"],
    buckets=LATENCY_BUCKETS,
)


def _allowed_networks():
    names = getattr(settings, "METRICS_ALLOWED_NETWORKS", DEFAULT_ALLOWED_NETWORKS)
    return [ipaddress.ip_network(name.strip(), strict=False) for name in names if name.strip()]


def scrape_allowed(request) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer "):].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


class WorkflowCollector:
    """Reads the workflow figures once per scrape."""

    def collect(self):
        from tasks import metrics as figures

        gauges = {
            "open": GaugeMetricFamily("workflow_queue_open_tasks", "OPEN tasks per queue (as of the dashboard refresh).", labels=["queue"]),
            "claimed": GaugeMetricFamily("workflow_queue_claimed_tasks", "CLAIMED tasks per queue (live).", labels=["queue"]),
            "overdue": GaugeMetricFamily("workflow_queue_overdue_tasks", "Active tasks past due (as of the dashboard refresh).", labels=["queue"]),
            "escalated": GaugeMetricFamily("workflow_queue_escalated_tasks", "Active escalated tasks (as of the dashboard refresh).", labels=["queue"]),
            "load": GaugeMetricFamily("workflow_queue_load_ratio", "current_load / max_capacity per queue (live).", labels=["queue"]),
            "capacity": GaugeMetricFamily("workflow_queue_capacity", "max_capacity per queue.", labels=["queue"]),
        }
        for q in figures.queue_gauges():
            gauges["open"].add_metric([q.queue_name], q.open)
            gauges["claimed"].add_metric([q.queue_name], q.load)
            gauges["overdue"].add_metric([q.queue_name], q.overdue)
            gauges["escalated"].add_metric([q.queue_name], q.escalated)
            gauges["load"].add_metric([q.queue_name], q.load / q.capacity if q.capacity else 0.0)
            gauges["capacity"].add_metric([q.queue_name], q.capacity)
        yield from gauges.values()

        totals = figures.task_event_totals()
        by_type = CounterMetricFamily("workflow_task_events", "Task history events by type.", labels=["event_type"])
        for event_type, count in sorted(totals.items()):
            by_type.add_metric([event_type.lower()], count)
        yield by_type
        for event_type, (name, documentation) in NAMED_COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=totals.get(event_type, 0))

        refreshed = figures.dashboard_refreshed_at()
        yield GaugeMetricFamily(
            "workflow_dashboard_refreshed_timestamp_seconds", "When the dashboard materialized views were last refreshed.",
            value=refreshed.timestamp() if refreshed else 0,
        )


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkflowCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_LATENCY)
    return registry


@login_not_required
@require_GET
def metrics(request):
    if not scrape_allowed(request):
        raise Http404("not found")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


class RequestLatencyMiddleware:
    """Observes each request's duration, labelled by URL pattern (bounded cardinality), not by raw path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if request.path_info != METRICS_PATH:
            match = getattr(request, "resolver_match", None)
            route = (match.route or match.view_name) if match else UNMATCHED_ROUTE
            method = request.method if request.method in KNOWN_METHODS else "OTHER"
            REQUEST_LATENCY.labels(method, route or UNMATCHED_ROUTE, f"{response.status_code // 100}xx").observe(
                time.perf_counter() - started
            )
        return response
