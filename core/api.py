"""The API's error shape, mapped once: {"code", "detail", "fields"} with the HTTP status of the error."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connections
from django.http import Http404, HttpResponse, JsonResponse
from django.template import loader
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from django_guid import get_guid
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .encrypted_fields import EncryptedFieldLookup
from .errors import WorkflowError
from .signals import api_exception_raised

# PostgreSQL gave up on the statement because of other transactions, not because of anything in the request:
# serialization_failure, deadlock_detected, lock_not_available (lock_timeout). It rolled the transaction back.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
RETRY_AFTER_SECONDS = 1


# The server is down, restarting or refusing connections: the request never reached a committed state.
# Class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now).
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def database_unavailable(exc) -> bool:
    """The database could not be reached or went away mid-request (as opposed to refusing the statement).

    psycopg raises OperationalError without a SQLSTATE when it cannot connect at all, and Django raises
    InterfaceError for a connection that was closed under it."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)


UNAVAILABLE_DETAIL = "The database is unavailable (restarting or unreachable); nothing was changed. Try again."

# read_only_sql_transaction: a write reached a server that takes none (a primary being demoted in a failover, a
# standby). Only a fault when the server itself says it is read-only: a write inside a transaction the code made
# read-only is a bug, and stays a 500.
READ_ONLY_SQLSTATE = "25006"


def connections_to_read_only_servers() -> list:
    """Open connections whose server takes no writes now, as target_session_attrs=read-write judges a server: it
    is a hot standby, or its sessions are read-only by default. PostgreSQL reports both to the client as they
    change (in_hot_standby, default_transaction_read_only), so this sends nothing."""
    found = []
    for wrapper in connections.all(initialized_only=True):
        raw = wrapper.connection
        if raw is None or raw.closed:
            continue
        status = raw.info.parameter_status
        if status("in_hot_standby") == "on" or status("default_transaction_read_only") == "on":
            found.append(wrapper)
    return found


def read_only_server(exc) -> bool:
    return (
        isinstance(exc, DatabaseError)
        and getattr(exc.__cause__, "sqlstate", None) == READ_ONLY_SQLSTATE
        and bool(connections_to_read_only_servers())
    )


def drop_connections_to_read_only_servers() -> None:
    """Close them (CONN_HEALTH_CHECKS keeps a read-only server's connection: it still answers), so the next request
    connects again and libpq's target_session_attrs=read-write picks the server that is primary now."""
    for wrapper in connections_to_read_only_servers():
        wrapper.close()


def transient_database_conflict(exc) -> bool:
    """A database error that running the same request again may not meet (Django keeps psycopg's as the cause)."""
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) in TRANSIENT_SQLSTATES


# PostgreSQL cut the work short for taking too long (settings: DATABASE_STATEMENT_TIMEOUT and
# DATABASE_IDLE_IN_TRANSACTION_TIMEOUT): query_canceled (statement_timeout, or an operator's pg_cancel_backend) and
# idle_in_transaction_session_timeout, which also ends the session. Either way the transaction was rolled back.
TIMEOUT_SQLSTATES = frozenset({"57014", "25P03"})
TIMEOUT_RETRY_AFTER_SECONDS = 5


def database_timeout(exc) -> bool:
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) in TIMEOUT_SQLSTATES


@dataclass(frozen=True)
class DatabaseFault:
    """A database failure that is not the request's fault and that the client may retry: a 503 with Retry-After."""

    code: str
    detail: str
    retry_after: int
    page_reason: str  # the 503 page's first line, for people


DATABASE_UNAVAILABLE = DatabaseFault(
    code="database_unavailable",
    detail=UNAVAILABLE_DETAIL,
    retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS,
    page_reason="The database is restarting or cannot be reached.",
)
DATABASE_CONFLICT = DatabaseFault(
    code="database_conflict",
    detail="A concurrent change held what this request needed; nothing was changed. Try again.",
    retry_after=RETRY_AFTER_SECONDS,
    page_reason="Someone else was changing the same work at that moment.",
)
DATABASE_TIMEOUT = DatabaseFault(
    code="database_timeout",
    detail="The database stopped this request for taking too long; nothing was changed. Try again.",
    retry_after=TIMEOUT_RETRY_AFTER_SECONDS,
    page_reason="The database took too long over this request.",
)


def database_fault(exc) -> DatabaseFault | None:
    """What a database error means for the client, when it is one to retry; None for anything else."""
    if database_unavailable(exc) or read_only_server(exc):
        return DATABASE_UNAVAILABLE
    if transient_database_conflict(exc):
        return DATABASE_CONFLICT
    if database_timeout(exc):
        return DATABASE_TIMEOUT
    return None


def document_database_conflict(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that writes may answer 503 `database_conflict`."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in ("post", "put", "patch", "delete"):
                operation.setdefault("responses", {}).setdefault(
                    "503",
                    {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        "description": "A concurrent change held what the request needed (lock timeout, deadlock: "
                        "`database_conflict`), or the database stopped it for running too long (`database_timeout`); "
                        "nothing was changed. Retry after `Retry-After` seconds.",
                    },
                )
    return result


def document_unsupported_media_type(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that takes a body answers 415 `unsupported_media_type`
    to a body of a type it cannot parse (DRF refuses it before the view runs, e.g. a body without Content-Type)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "415",
                    {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        "description": "The body's media type is not one the operation reads (send JSON).",
                    },
                )
    return result


NON_BLANK_PATTERN = r"\S"


def _component_refs(node) -> set[str]:
    """Names of the components `node` refers to ($ref), at any depth."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                found.add(ref.rsplit("/", 1)[-1])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def document_blank_strings(result, generator, request, public):
    """drf-spectacular postprocessing hook: a required-text input field refuses blank text, spaces included.

    DRF trims a CharField's input and then refuses it when empty, so `minLength: 1` alone would promise that
    "   " is accepted. Request-only components get `pattern: \\S` (some non-space character) on such
    strings; components that responses use too are left alone, since stored text may be blank."""
    operations = [op for item in result.get("paths", {}).values() for op in item.values() if isinstance(op, dict)]
    in_requests = set().union(*(_component_refs(op.get("requestBody", {})) for op in operations))
    in_responses = set().union(*(_component_refs(op.get("responses", {})) for op in operations))
    for name in in_requests - in_responses:
        for spec in result.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {}).values():
            strings = [spec, spec.get("items", {})] if spec.get("type") == "array" else [spec]
            for string in strings:
                if (
                    string.get("type") == "string"
                    and string.get("minLength", 0) >= 1
                    and "pattern" not in string
                    and "enum" not in string
                    and "format" not in string
                ):
                    string["pattern"] = NON_BLANK_PATTERN
    return result


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {message}" for key, value in detail.items() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for item in detail for message in _flatten(item)]
    return [str(detail)]


def _fields(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def error_body(code: str, detail: str, fields: dict | None = None) -> dict:
    """{"code", "detail", "fields"?, "request_id"?}: the request id lets a caller quote the failure, and an operator
    find its log lines (X-Request-ID, django-guid)."""
    body = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    if request_id := get_guid():
        body["request_id"] = request_id
    return body


def error_response(*, code: str, detail: str, http_status: int, fields: dict | None = None, headers=None) -> Response:
    return Response(error_body(code, detail, fields), status=http_status, headers=headers)


def exception_handler(exc, context):
    fault = database_fault(exc)
    if fault:
        # Checked first: the receivers (auditing a denial) would need the database, which may be gone. Each service
        # call is one transaction, so nothing of the request was applied.
        drop_connections_to_read_only_servers()
        return error_response(
            code=fault.code,
            detail=fault.detail,
            http_status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(fault.retry_after)},
        )
    api_exception_raised.send(sender=type(exc), exc=exc, context=context)
    if isinstance(exc, WorkflowError):
        return error_response(code=exc.code, detail=exc.detail, http_status=exc.http_status, fields=exc.fields)
    if isinstance(exc, EncryptedFieldLookup):
        # A filter that reached an encrypted field (cases/selectors.py refuses the known ones by name first).
        return error_response(
            code="encrypted_field_filter",
            detail=str(exc),
            http_status=status.HTTP_400_BAD_REQUEST,
            fields={exc.field_name: [str(exc)]},
        )
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return error_response(
            code="invalid", detail="Invalid input.", http_status=status.HTTP_400_BAD_REQUEST, fields=fields
        )
    if isinstance(exc, DataError):
        # Input that passed validation but not PostgreSQL (a value out of a column's range, say): the
        # transaction was rolled back, so it is the client's to correct, not a server fault.
        primary = (
            getattr(getattr(exc.__cause__, "diag", None), "message_primary", None) or "a value could not be stored"
        )
        return error_response(
            code="invalid", detail=f"Invalid input: {primary}.", http_status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        first = next(iter(fields.items()))
        detail = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        return error_response(code="invalid", detail=detail, http_status=response.status_code, fields=fields)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(detail, (dict, list)):
        return error_response(
            code="invalid", detail="Invalid input.", http_status=response.status_code, fields=_fields(detail)
        )
    return error_response(
        code=code if isinstance(code, str) else "error",
        detail=str(detail),
        http_status=response.status_code,
        headers={k: v for k, v in response.items()},
    )


API_PREFIX = "/api/"


def not_found(request, exception=None):
    """404 for URLs that match no route: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("not_found", "No such resource."), status=404)
    return page_not_found(request, exception)


def database_fault_response(request, fault: DatabaseFault):
    """503 with Retry-After: JSON under /api/, a plain "try again" page elsewhere."""
    if request.path.startswith(API_PREFIX):
        response = JsonResponse(error_body(fault.code, fault.detail), status=503)
    else:
        # Rendered without a request context: the context processors would need the database.
        response = HttpResponse(loader.render_to_string("503.html", {"reason": fault.page_reason}), status=503)
    response["Retry-After"] = str(fault.retry_after)
    return response


def server_error(request):
    """handler500. Django calls it while handling the exception, so sys.exc_info() names what went wrong: a
    database that is down or restarting, a lock or statement timeout, a deadlock are the client's to retry (503),
    not a fault of ours (500). This also covers failures outside views (middleware, session and user loading)."""
    fault = database_fault(sys.exc_info()[1])
    if fault:
        drop_connections_to_read_only_servers()
        return database_fault_response(request, fault)
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
    return django_server_error(request)
