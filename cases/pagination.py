"""Keyset pagination of the case list (API and page): newest case first by primary key, with a count that says
whether it is exact, capped or estimated.

DRF's CursorPagination with what the case list needs beside it: a page-number client (?page=N, N > 1) gets a 400
naming `page` and pointing at the cursor, a malformed cursor a 400 naming `cursor` (DRF answers 404, and passes an
unparsable position on to the query), and a count, which DRF's cursor pages do not have. The count is the
selector's (cases/selectors.py: case_list_count): a cursor page reads one page of rows, and a COUNT(*) of the scope
would read all of it.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from core.errors import InvalidInput
from core.pagination import AT_LEAST, ESTIMATE, EXACT, ApproximateCount

PAGE_PARAMETER = "page"
CURSOR_PARAMETER = "cursor"
# A page-number client's first request still works: page 1 is the first cursor page.
FIRST_PAGE = "1"
LIST_PAGE_SIZE = settings.REST_FRAMEWORK["PAGE_SIZE"]


class CountKind:
    EXACT = EXACT
    AT_LEAST = AT_LEAST  # a capped count reached its cap: there are this many or more
    ESTIMATE = ESTIMATE  # the planner's estimate


# The case list's count is shown as every list's (core/pagination.py): "1,234", "2,000+", "about 1.2 million".
CountFigure = ApproximateCount


class CaseCursorPagination(CursorPagination):
    """Cursor pages of the case list, newest case first (the primary key's index serves the order and the cursor)."""

    ordering = "-case_id"
    page_size = LIST_PAGE_SIZE
    cursor_query_param = CURSOR_PARAMETER
    cursor_query_description = "The position to continue from: the `next` or `previous` link of the page before."
    invalid_cursor_message = "cursor: not a cursor of this list; follow a `next` or `previous` link."

    def __init__(self, *, count=None):
        # count(queryset) -> CountFigure: the list's scope (without the cursor's condition) counted as it can afford.
        self.count_of = count
        self.count = None

    def paginate_queryset(self, queryset, request, view=None):
        refuse_page_numbers(request.query_params)
        if self.count_of is not None:
            self.count = self.count_of(queryset)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except DRFNotFound:
            cursor = Cursor(offset=0, reverse=False, position="not a cursor")
        if cursor is not None and not (cursor.position or "").isdigit():
            raise InvalidInput(
                self.invalid_cursor_message,
                code="invalid_cursor",
                fields={self.cursor_query_param: ["Not a cursor of this list: follow a `next` or `previous` link."]},
            )
        return cursor

    def get_paginated_response(self, data):
        return Response(self.page_fields() | {"results": data})

    def page_fields(self) -> dict:
        fields = {"next": self.get_next_link(), "previous": self.get_previous_link()}
        if self.count is not None:
            fields |= {"count": self.count.value, "count_kind": self.count.kind, "count_display": self.count.display}
        return fields

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"] = {
            "count": {
                "type": "integer",
                "description": "How many cases the list holds: exact, at least (a capped count), or an estimate, "
                "as count_kind says. Never a full count of a large scope.",
                "example": 1200000,
            },
            "count_kind": {"type": "string", "enum": [CountKind.EXACT, CountKind.AT_LEAST, CountKind.ESTIMATE]},
            "count_display": {
                "type": "string",
                "description": 'The count as a person reads it: "1,234", "2,000+", "about 1.2 million".',
            },
            **response["properties"],
        }
        response["required"] = ["count", "count_kind", "count_display", "next", "previous", "results"]
        return response

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": PAGE_PARAMETER,
                "required": False,
                "in": "query",
                "description": "Not supported beyond the first page: this list pages by cursor. page=1 is the first "
                "page; any other value is a 400 naming `page` (follow the `next` link, whose `cursor` continues the "
                "list).",
                "schema": {"type": "integer", "enum": [1]},
            },
        ]


def refuse_page_numbers(params) -> None:
    """A page number other than 1 is refused with a 400 that names `page` and says to follow the cursor: an offset
    page of a million cases reads every row before it, and a silently ignored ?page=N would repeat page 1."""
    values = params.getlist(PAGE_PARAMETER) if hasattr(params, "getlist") else [params.get(PAGE_PARAMETER)]
    values = [value for value in values if value is not None]
    if values and any(value.strip() != FIRST_PAGE for value in values):
        raise InvalidInput(
            f"{PAGE_PARAMETER}: this list pages by cursor, not by page number",
            code="page_numbers_not_supported",
            fields={
                PAGE_PARAMETER: [
                    "This list pages by cursor: request it without `page` and follow the `next` link (its "
                    f"`{CURSOR_PARAMETER}` parameter continues the list). page=1 is the first page."
                ]
            },
        )
