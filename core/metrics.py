"""The Prometheus scrape (text format), its access rule, and the request-latency middleware.

Access: a client whose address (REMOTE_ADDR, never a forwarded header) is in METRICS_ALLOWED_NETWORKS, or any
client presenting `Authorization: Bearer <METRICS_TOKEN>` when a token is set. Anything else gets 404, so the
endpoint is not advertised.

The /metrics view is the tasks app's (tasks/console/metrics.py): it hands its collector of workflow figures, read from
the database at scrape time so that all gunicorn workers agree, to `metrics_response`.
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
from django.http import Http404, HttpResponse
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

DEFAULT_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]
METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

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
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer ") :].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


def _registry(collectors) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_LATENCY)
    return registry


def metrics_response(request, *collectors) -> HttpResponse:
    """The scrape: the collectors' figures and the request latency; 404 for a client `scrape_allowed` refuses."""
    if not scrape_allowed(request):
        raise Http404("not found")
    return HttpResponse(generate_latest(_registry(collectors)), content_type=CONTENT_TYPE_PLAIN_0_0_4)


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
