"""Keyset (cursor) pagination and counts that stop early, for lists whose scope may hold millions of rows.

DRF's CursorPagination was the first choice: it keys a page on the first ordering field alone and skips the rows
that tie with it by OFFSET, which suits a unique key (`-case_id`) but not the task list's (priority, created_at,
task_id), where one priority holds a tenth of the backlog. So this pages on the whole key. Three pieces:

- `KeysetList(queryset, ordering=[...], partitions={...})`: pages of a queryset in a unique ordering (its last
  field is the primary key). With `partitions` ({field: values}: the caller's queues, the statuses asked for), a
  page is merged from one index probe per combination of values, as claim-next does
  (`unnest(...) CROSS JOIN LATERAL (... ORDER BY ... LIMIT n)`), so it reads about a page's worth of index
  entries per partition and never sorts the union. Without, one probe of the queryset in key order (right when an
  index leads with the ordering). The queryset's filters are kept (they are compiled into every probe) and must
  join nothing: a filter on another table goes in as a subquery (`field__in=...`).
  `.page(cursor=None, size=50) -> KeysetPage`; `.count(cap=COUNT_CAP) -> ApproximateCount`.
- `ApproximateCount`: exact up to a cap, "2,000+" at it, "about 1.2 million" from the planner's estimate above it;
  `str()` reads as shown on pages, `.kind` says which for the API.
- `KeysetPagination`: a DRF pagination class over KeysetList. `?cursor=` in the `next` / `previous` links;
  `count` and `count_kind` beside `results`; `?page=N` is refused with a 400 that names `page` and says to follow
  the cursor. A view may define `keyset_partitions(request, ordering) -> dict | None`; the ordering is the
  queryset's (OrderingFilter's or the model's), with the primary key appended when missing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from itertools import groupby
from uuid import UUID

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models import Field
from django.db.models.expressions import RawSQL
from django.db.models.lookups import Exact, In
from django.db.models.sql.where import AND
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from core.estimates import remembered_estimate

# A count stops here (as the admin console's does): counting reads the rows it counts.
COUNT_CAP = 2_000
PAGE_SIZE = 50
CURSOR_PARAM = "cursor"
PAGE_NUMBER_PARAM = "page"
PAGE_NUMBERS_REFUSED = (
    "Page numbers are not supported: this list pages by cursor. Request it without `page` and follow the "
    "`next` and `previous` links (their `cursor` parameter)."
)
EXACT, AT_LEAST, ESTIMATE = "exact", "at_least", "estimate"


class InvalidCursor(ValueError):
    """A cursor this list did not make (tampered, truncated, or made for another ordering)."""


@dataclass(frozen=True)
class ApproximateCount:
    """How many rows a list holds: `value` is the count (EXACT), a lower bound (AT_LEAST) or an ESTIMATE."""

    value: int
    kind: str = EXACT

    @property
    def display(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if self.kind == EXACT:
            return f"{self.value:,}"
        if self.kind == AT_LEAST:
            return f"{self.value:,}+"
        return f"about {rounded(self.value)}"


def rounded(value: int) -> str:
    """A figure to two significant digits, in words past a million: 1,234,567 -> "1.2 million"."""
    for size, word in ((1_000_000_000, "billion"), (1_000_000, "million")):
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + f" {word}"
    return f"{int(float(f'{value:.2g}')):,}"


@dataclass(frozen=True)
class _Key:
    field: object
    descending: bool

    @property
    def column(self) -> str:
        return self.field.column


def _key_json(value):
    """A key value in a cursor, to the microsecond (DjangoJSONEncoder cuts datetimes to milliseconds)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"a cursor cannot hold {type(value).__name__}")


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None


class KeysetList:
    """A queryset paged on its ordering's key by index probes (see the module's docstring)."""

    def __init__(self, queryset, *, ordering: Sequence[str], partitions: Mapping[str, Sequence] | None = None):
        self.queryset = queryset
        self.model = queryset.model
        self.ordering = [str(name) for name in ordering]
        opts = self.model._meta
        self.keys = [
            _Key(opts.get_field(name.lstrip("-")), name.startswith("-")) for name in self.ordering if name.strip("-")
        ]
        if not self.keys or not self.keys[-1].field.primary_key:
            raise ValueError(f"a keyset ordering ends with the primary key: {self.ordering}")
        if any(key.field.null for key in self.keys):
            raise ValueError(f"a keyset ordering has no nullable field: {self.ordering}")
        self.partitions = {
            opts.get_field(name): list(dict.fromkeys(values)) for name, values in (partitions or {}).items()
        }
        self.connection = connections[queryset.db]
        self.table = self.connection.ops.quote_name(opts.db_table)

    # --- cursors -------------------------------------------------------------------------------------------------

    def cursor_for(self, row, *, backward: bool) -> str:
        values = [getattr(row, key.field.attname) for key in self.keys]
        payload = {"o": ",".join(self.ordering), "k": values, "b": backward}
        raw = json.dumps(payload, default=_key_json, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def cursor_decoded(self, cursor: str) -> tuple[list, bool]:
        try:
            payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if payload["o"] != ",".join(self.ordering) or len(payload["k"]) != len(self.keys):
                raise InvalidCursor("the cursor belongs to another ordering")
            values = [key.field.to_python(value) for key, value in zip(self.keys, payload["k"], strict=True)]
            if any(value is None for value in values):
                raise InvalidCursor("the cursor has an empty key")
            return values, bool(payload["b"])
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError) as error:
            if isinstance(error, InvalidCursor):
                raise
            raise InvalidCursor("the cursor cannot be read") from error

    # --- SQL -----------------------------------------------------------------------------------------------------

    def _where(self) -> tuple[str, list]:
        """The queryset's filters as SQL for the probes. A filter on a partition's column by a list of values (`=`
        or `IN`) narrows that partition's values instead of being repeated in every probe, where beside the
        probe's own equality it would make the planner expect a handful of rows and sort them rather than walk
        the index."""
        query = self.queryset.query.clone()
        joined = [alias for alias, count in query.alias_refcount.items() if count and alias != query.base_table]
        if joined:
            raise ValueError(f"a keyset list's filters join no other table (found {joined}); use a subquery")
        if query.where.connector == AND and not query.where.negated:
            kept = []
            for child in query.where.children:
                narrowed = self._narrowed_partition(child)
                if narrowed is None:
                    kept.append(child)
                else:
                    field, values = narrowed
                    self.partitions[field] = [value for value in self.partitions[field] if value in values]
            query.where.children = kept
        try:
            sql, params = query.get_compiler(connection=self.connection).compile(query.where)
        except FullResultSet:
            return "TRUE", []
        return sql or "TRUE", list(params)

    def _narrowed_partition(self, condition):
        """(partition field, allowed values) when `condition` is `column = value` or `column IN (values)` on a
        partition's column, else None."""
        if not isinstance(condition, Exact | In) or not isinstance(getattr(condition.lhs, "target", None), Field):
            return None
        field = next((f for f in self.partitions if f.column == condition.lhs.target.column), None)
        if field is None or condition.lhs.alias != self.queryset.query.base_table:
            return None
        values = [condition.rhs] if isinstance(condition, Exact) else condition.rhs
        if not isinstance(values, list | tuple | set) or not all(isinstance(v, str | int) for v in values):
            return None
        return field, set(values)

    def _column(self, key_or_field) -> str:
        field = getattr(key_or_field, "field", key_or_field)
        return f"{self.table}.{self.connection.ops.quote_name(field.column)}"

    def _partition_sources(self) -> tuple[str, list, list[str]]:
        """`unnest(...) AS p0(v) CROSS JOIN ...`, its parameters, and the probe's equalities on them."""
        sources, params, equalities = [], [], []
        for index, (field, values) in enumerate(self.partitions.items()):
            sources.append(f"unnest(%s::{field.db_type(self.connection)}[]) AS p{index}(v)")
            params.append(values)
            equalities.append(f"{self._column(field)} = p{index}.v")
        return " CROSS JOIN ".join(sources), params, equalities

    def _order_by(self, prefix: str, backward: bool) -> str:
        terms = []
        for index, key in enumerate(self.keys):
            column = f"{prefix}k{index}" if prefix is not None else self._column(key)
            terms.append(f"{column} {'DESC' if key.descending != backward else 'ASC'}")
        return ", ".join(terms)

    def _probes(self, where, where_params, equalities, after, backward, limit) -> tuple[list[str], list]:
        """One ordered, limited index probe per run of same-direction keys: the rows after `after` are those equal
        on the runs before and past it on this one (a row comparison, which a btree index bounds)."""
        select = ", ".join(f"{self._column(key)} AS k{index}" for index, key in enumerate(self.keys))
        base = [f"({where})", *equalities]
        if after is None:
            conditions = [([], [])]
        else:
            conditions = []
            runs = [list(run) for _, run in groupby(enumerate(self.keys), key=lambda item: item[1].descending)]
            for position, run in enumerate(runs):
                equal = [index for earlier in runs[:position] for index, _ in earlier]
                parts = [f"{self._column(self.keys[index])} = %s" for index in equal]
                forward_up = run[0][1].descending == backward  # ascending in the direction read
                columns = ", ".join(self._column(key) for _, key in run)
                marks = ", ".join("%s" for _ in run)
                parts.append(f"({columns}) {'>' if forward_up else '<'} ({marks})")
                conditions.append((parts, [after[index] for index in equal] + [after[index] for index, _ in run]))
        probes, params = [], []
        for parts, values in conditions:
            probes.append(
                f"SELECT {select} FROM {self.table} WHERE {' AND '.join(base + parts)} "
                f"ORDER BY {self._order_by(None, backward)} LIMIT {int(limit)}"
            )
            params.extend(where_params + values)
        return probes, params

    def page_sql(self, *, after: list | None = None, backward: bool = False, limit: int = PAGE_SIZE + 1):
        """The statement that reads one page's keys (k0, k1, ...), and its parameters; None when nothing matches."""
        try:
            where, where_params = self._where()
        except EmptyResultSet:
            return None
        if self.partitions and not all(self.partitions.values()):
            return None
        sources, source_params, equalities = self._partition_sources()
        probes, probe_params = self._probes(where, where_params, equalities, after, backward, limit)
        merged = probes[0] if len(probes) == 1 else " UNION ALL ".join(f"({probe})" for probe in probes)
        order = self._order_by("m.", backward)
        keys = ", ".join(f"m.k{index}" for index in range(len(self.keys)))
        if not sources:
            return f"SELECT {keys} FROM ({merged}) m ORDER BY {order} LIMIT {int(limit)}", probe_params
        if len(probes) > 1:
            merged = f"SELECT * FROM ({merged}) m ORDER BY {order} LIMIT {int(limit)}"
        statement = f"SELECT {keys} FROM {sources} CROSS JOIN LATERAL ({merged}) m ORDER BY {order} LIMIT {int(limit)}"
        return statement, source_params + probe_params

    def count_sql(self, *, cap: int = COUNT_CAP):
        """The statement that counts at most cap + 1 rows, partition by partition through their indexes."""
        try:
            where, where_params = self._where()
        except EmptyResultSet:
            return None
        if self.partitions and not all(self.partitions.values()):
            return None
        sources, source_params, equalities = self._partition_sources()
        # In key order, so each probe walks its index and stops at the cap (a bitmap scan would read all its rows
        # before the LIMIT).
        probe = (
            f"SELECT 1 FROM {self.table} WHERE {' AND '.join([f'({where})', *equalities])} "
            f"ORDER BY {self._order_by(None, False)}"
        )
        limit = int(cap) + 1
        if sources:
            probe = f"SELECT 1 FROM {sources} CROSS JOIN LATERAL ({probe} LIMIT {limit}) m"
        return f"SELECT count(*) FROM ({probe} LIMIT {limit}) c", source_params + where_params

    # --- reads ---------------------------------------------------------------------------------------------------

    def page(self, *, cursor: str | None = None, size: int = PAGE_SIZE) -> KeysetPage:
        """The page after (or, for a `previous` cursor, before) `cursor`; the first page without one. One query:
        the rows whose keys the probes pick (`pk IN (...)`), with the queryset's related rows."""
        after, backward = self.cursor_decoded(cursor) if cursor else (None, False)
        statement = self.page_sql(after=after, backward=backward, limit=size + 1)
        rows = []
        if statement is not None:
            keys = RawSQL(f"SELECT s.k{len(self.keys) - 1} FROM ({statement[0]}) s", statement[1])
            read_order = [
                f"{'' if name.startswith('-') == backward else '-'}{name.lstrip('-')}" for name in self.ordering
            ]
            rows = list(self.queryset.filter(pk__in=keys).order_by(*read_order))
        more = len(rows) > size
        rows = rows[:size]
        if backward:
            rows.reverse()
        has_next = more if not backward else True
        has_previous = (after is not None) if not backward else more
        return KeysetPage(
            rows=rows,
            next_cursor=self.cursor_for(rows[-1], backward=False) if rows and has_next else None,
            previous_cursor=self.cursor_for(rows[0], backward=True) if rows and has_previous else None,
        )

    def count(
        self, *, cap: int = COUNT_CAP, estimate: bool = True, estimate_key: str | None = None
    ) -> ApproximateCount:
        """Exact up to `cap`; past it (with `estimate`) the planner's estimate when that is larger, else "cap+".
        With `estimate_key` (what the list holds: its queues and filters) the estimate is kept a while
        (core/estimates.py)."""
        statement = self.count_sql(cap=cap)
        if statement is None:
            return ApproximateCount(0)
        with self.connection.cursor() as db:
            db.execute(*statement)
            (counted,) = db.fetchone()
        if counted <= cap:
            return ApproximateCount(counted)
        if not estimate:
            guess = 0
        elif estimate_key is None:
            guess = self.estimate()
        else:
            guess = remembered_estimate(estimate_key, self.estimate)
        return ApproximateCount(guess, ESTIMATE) if guess > cap else ApproximateCount(cap, AT_LEAST)

    def estimate(self) -> int:
        """The planner's estimate of the rows the queryset holds (from the statistics ANALYZE keeps)."""
        statement = self.queryset.order_by().values("pk").query.sql_with_params()
        with self.connection.cursor() as db:
            db.execute("EXPLAIN (FORMAT JSON) " + statement[0], statement[1])
            plan = db.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


def queryset_ordering(queryset) -> list[str]:
    """The ordering a queryset was given (or its model's), with the primary key appended when missing."""
    ordering = [str(term) for term in (queryset.query.order_by or queryset.model._meta.ordering or [])]
    pk = queryset.model._meta.pk.name
    if not any(term.lstrip("-") in (pk, "pk") for term in ordering):
        ordering.append(pk)
    return [term.replace("pk", pk) if term.lstrip("-") == "pk" else term for term in ordering]


class KeysetPagination(BasePagination):
    """DRF pagination over KeysetList: `next` / `previous` cursor links, a capped or estimated `count`."""

    page_size = PAGE_SIZE
    count_cap = COUNT_CAP
    # Past the cap a client gets "at least" rather than the planner's estimate (one more statement to plan).
    count_estimate = False

    def paginate_queryset(self, queryset, request, view=None):
        if PAGE_NUMBER_PARAM in request.query_params:
            raise ValidationError({PAGE_NUMBER_PARAM: [PAGE_NUMBERS_REFUSED]}, code="page_numbers_unsupported")
        ordering = queryset_ordering(queryset)
        partitions = view.keyset_partitions(request, ordering) if hasattr(view, "keyset_partitions") else None
        self.listing = KeysetList(queryset, ordering=ordering, partitions=partitions)
        self.request = request
        try:
            self.page = self.listing.page(cursor=request.query_params.get(CURSOR_PARAM), size=self.page_size)
        except InvalidCursor as error:
            raise ValidationError({CURSOR_PARAM: [f"Invalid cursor: {error}."]}, code="invalid_cursor") from None
        first_and_last = (
            not self.page.next_cursor and not self.page.previous_cursor and CURSOR_PARAM not in (request.query_params)
        )
        self.count = (
            ApproximateCount(len(self.page.rows))
            if first_and_last
            else self.listing.count(cap=self.count_cap, estimate=self.count_estimate)
        )
        return self.page.rows

    def link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), CURSOR_PARAM, cursor)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count.value,
                "count_kind": self.count.kind,
                "next": self.link(self.page.next_cursor),
                "previous": self.link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "count_kind", "next", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": f"Rows in the list: exact up to {self.count_cap:,}; past it a lower bound or "
                    "the planner's estimate (see `count_kind`).",
                },
                "count_kind": {"type": "string", "enum": [EXACT, AT_LEAST, ESTIMATE]},
                "next": {"type": "string", "nullable": True, "format": "uri", "description": "The next page."},
                "previous": {"type": "string", "nullable": True, "format": "uri", "description": "The page before."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": CURSOR_PARAM,
                "required": False,
                "in": "query",
                "description": "Where the page starts: take it from the `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": PAGE_NUMBER_PARAM,
                "required": False,
                "in": "query",
                "deprecated": True,
                "description": "Not supported: 400 `page`. The list pages by `cursor`.",
                "schema": {"type": "integer"},
            },
        ]


__all__ = [
    "COUNT_CAP",
    "CURSOR_PARAM",
    "PAGE_SIZE",
    "ApproximateCount",
    "InvalidCursor",
    "KeysetList",
    "KeysetPage",
    "KeysetPagination",
    "queryset_ordering",
]
