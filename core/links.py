"""Links for every row of a list page, reversed once per page rather than once per row.

`{% url 'task-page' task.pk %}` walks the URL resolver for each row, two or three links a row on a list page
(bench/RESULTS.md has what that cost). `per_object_url` reverses the URL once with a marker in place of the
object's key and fills each key into the result: the same URL reverse() gives, whatever the URLconf says.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse

# A key no row has (larger than any bigint id we hand out, and all digits, so the int converter takes it).
_MARKER = 918_273_645_546_372_819


def per_object_url(name: str) -> Callable[[int], str]:
    """reverse(name, args=[key]) as a function of key, for a URL whose one argument is an integer key."""
    reversed_url = reverse(name, args=[_MARKER])
    head, marker, tail = reversed_url.partition(str(_MARKER))
    if not marker or str(_MARKER) in tail:
        raise ValueError(f"{name}: {reversed_url} does not hold its key exactly once")
    return lambda key: f"{head}{int(key)}{tail}"
