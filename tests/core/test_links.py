"""core/links.py: a row's link made once per page is the link reverse() makes for that row."""

import pytest
from django.urls import NoReverseMatch, reverse

from core.links import per_object_url


@pytest.mark.parametrize("name", ["task-page", "task-page-claim", "case-page"])
@pytest.mark.parametrize("key", [1, 7, 10, 4_000_000_017, 9_223_372_036_854_775_807])
def test_the_link_is_what_reverse_gives(name, key):
    assert per_object_url(name)(key) == reverse(name, args=[key])


def test_a_url_without_a_key_is_refused():
    with pytest.raises(NoReverseMatch):
        per_object_url("inbox")


def test_a_key_that_is_not_an_integer_is_refused():
    with pytest.raises(ValueError):
        per_object_url("task-page")("1/../admin")
