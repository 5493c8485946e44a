"""Template tags of the supervisor console: the dashboard at the top of the admin index."""

from django import template
from django.template.loader import render_to_string

from tasks.console import charts
from tasks.console.dashboard import supervisor_dashboard

register = template.Library()


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@register.filter
def duration(seconds) -> str:
    """Seconds as a short human duration: 12 min, 3.5 h, 2.0 d."""
    return _duration(seconds)


@register.filter
def seconds(value) -> str:
    """A short span as the database health page shows it: 0.4 s, 12 s, 3 min 5 s, 2.5 h."""
    if value is None:
        return "—"
    value = float(value)
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{int(value)} s"
    if value < 3600:
        return f"{int(value) // 60} min {int(value) % 60} s"
    return _duration(value)


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{value:.1f}%"


@register.simple_tag(takes_context=True)
def supervisor_dashboard_panel(context):
    """The dashboard for the requesting user's supervised queues, with its charts (rendered server-side)."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    dashboard = supervisor_dashboard(user=request.user)
    return render_to_string(
        "admin/dashboard.html",
        {
            "dashboard": dashboard,
            "utilisation_svg": charts.utilisation_bars(
                [(q.display_name or q.queue_name, q.current_load, q.max_capacity) for q in dashboard.queues]
            ),
            "throughput_svg": charts.throughput_chart(dashboard.throughput_hourly),
            "sla_trend_svg": charts.sla_trend_chart(dashboard.sla_trend_daily),
        },
        request=request,
    )
