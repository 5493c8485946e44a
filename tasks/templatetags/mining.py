"""Template filters of the process mining page (tasks/console/mining.py)."""

from django import template

from tasks.console.mining import duration_text

register = template.Library()


@register.filter
def duration(seconds):
    """Seconds as a person reads them: '45 s', '12 min', '3 h 5 min', '2 d 4 h'; '—' for none."""
    return duration_text(seconds)
