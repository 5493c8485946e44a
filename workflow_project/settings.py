"""Settings, all read from the environment in this one place (see README: Configuration)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

from core import database_url

from . import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate ("3000/minute"), or None for "off"."""
    value = os.environ.get(name, default).strip()
    if value.lower() in {"", "off", "none", "false"}:
        return None
    count, _, period = value.partition("/")
    if not count.isdigit() or not period or period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name} must look like 3000/minute or be off, not {value!r}")
    return value


DURATION_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}


def env_seconds(name: str, default: float) -> float:
    """A non-negative number of seconds ("5", "0.5")."""
    value = os.environ.get(name, "").strip()
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ImproperlyConfigured(f"{name} must be a number of seconds, 0 or more, not {value!r}")
    return seconds


def env_duration_ms(name: str, default: str) -> int:
    """A duration in PostgreSQL's spelling ("500ms", "30s", "2min", "1h") as milliseconds; "0" means none."""
    value = os.environ.get(name, "").strip() or default
    if value == "0":
        return 0
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :]
    if not number.isdigit() or unit not in DURATION_UNITS_MS:
        raise ImproperlyConfigured(
            f"{name} must be a whole number with a unit (500ms, 30s, 2min, 1h), or 0 for no limit, not {value!r}"
        )
    return int(number) * DURATION_UNITS_MS[unit]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set")
    # A per-checkout key kept under ./var/ so sessions survive restarts of the demo.
    key_file = embedded.var_dir(BASE_DIR) / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()


def field_encryption_key_entries() -> list[str]:
    """The field encryption key set, "<key id>:<key>" entries with the current key first (core/encryption.py).

    From FIELD_ENCRYPTION_KEYS (comma-separated), or the file FIELD_ENCRYPTION_KEY_FILE names (entries separated
    by commas or lines, `#` comments), never from the database. With neither, a key file generated once under
    ./var/ (like SECRET_KEY), for the demo, the embedded default and tests.
    """
    listed = os.environ.get("FIELD_ENCRYPTION_KEYS", "").strip()
    key_file = os.environ.get("FIELD_ENCRYPTION_KEY_FILE", "").strip()
    if listed and key_file:
        raise ImproperlyConfigured("set FIELD_ENCRYPTION_KEYS or FIELD_ENCRYPTION_KEY_FILE, not both")
    if listed:
        return [entry.strip() for entry in listed.split(",") if entry.strip()]
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY_FILE {key_file} is not a readable file")
    else:
        if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS or FIELD_ENCRYPTION_KEY_FILE must be set")
        path = embedded.var_dir(BASE_DIR) / "field_encryption_keys"
        if not path.exists():
            import base64
            import secrets

            key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
            path.touch(mode=0o600)
            path.write_text(
                f"# field encryption keys, current first (README: Encrypted fields)\nlocal-{secrets.token_hex(3)}:{key}\n"
            )
    lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
    return [entry.strip() for line in lines for entry in line.split(",") if entry.strip()]


FIELD_ENCRYPTION_KEYS = field_encryption_key_entries()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    # Only for the migration history: entitlements 0006 depends on it and 0008 moves its keys, hashed, to
    # entitlements.ApiToken and empties its table. Its admin is unregistered (entitlements/admin.py).
    "rest_framework.authtoken",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "pgtrigger",
    "django_celery_beat",
    "django_celery_results",
    "django_htmx",
    "django_guid",
    "csp",
    "core",
    "entitlements",
    "queues",
    "tasks",
    "cases",
]

MIDDLEWARE = [
    # First: the request id (X-Request-ID) is in every log line of the request, its error body and its jobs.
    "django_guid.middleware.guid_middleware",
    "core.metrics.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "entitlements.privileges.ActingRequestMiddleware",
    # A request that writes, and its user's next lag-tolerant reads, stay on the primary (core/replica.py); outside
    # the request's transaction, so that it has committed when the write's position is read.
    "core.replica.ReadYourWritesMiddleware",
    # One transaction per request, in its user's row scope (row-level security; docs/row-level-security.md).
    "entitlements.row_scope.RowScopeMiddleware",
    "core.middleware.PageLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "workflow_project.urls"
WSGI_APPLICATION = "workflow_project.wsgi.application"
ASGI_APPLICATION = "workflow_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tasks.views.notification_bell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# DATABASE_URL set: use it. Unset: an embedded PostgreSQL (pgserver) under ./var/pgdata, its roles and database made
# on first start. The roles (core/db_roles.py): DATABASE_URL logs in as workflow_app (DML only) in production;
# DATABASE_MIGRATE_URL (default: DATABASE_URL) as workflow_owner, which `manage.py migrate` uses; DATABASE_SET_ROLE
# makes a login that holds several roles act as one of them (the tests and the Celery worker log in as
# workflow_maintenance and act as workflow_app, raising themselves only inside core.db_roles.maintenance_role()).
# TLS comes with the URL, as libpq spells it: ?sslmode=verify-full&sslrootcert=/path/ca.crt (and sslcert, sslkey
# for a client certificate); dj_database_url passes them to psycopg in OPTIONS. A URL may list several hosts, each
# with its port, for a failover formation: postgresql://u@node1:5432,node2:5432/workflow?target_session_attrs=
# read-write&connect_timeout=5 connects to whichever is primary now (core/database_url.py, deploy/failover/).
DATABASE_URL = os.environ.get("DATABASE_URL", "")

# Limits on every session of the application, so a stuck query or a forgotten transaction cannot hold locks for
# long: PostgreSQL cancels a statement running past DATABASE_STATEMENT_TIMEOUT or waiting past DATABASE_LOCK_TIMEOUT
# for a lock (the request answers 503 with Retry-After), and ends a session left idle inside a transaction past
# DATABASE_IDLE_IN_TRANSACTION_TIMEOUT. They are sent as connection options; behind PgBouncer in transaction mode,
# which does not pass options on, they are not (DATABASE_TIMEOUTS_IN_OPTIONS is false there): the database roles carry
# them instead (ALTER ROLE ... SET, with the values of core.timeouts.session_timeouts()). Jobs whose statements grow
# with whole tables lift the statement timeout for their own transaction (core.timeouts.statement_timeout_lift), and
# so does migrate (core.apps).
DATABASE_STATEMENT_TIMEOUT = env_duration_ms("DATABASE_STATEMENT_TIMEOUT", "30s")
DATABASE_LOCK_TIMEOUT = env_duration_ms("DATABASE_LOCK_TIMEOUT", "10s")
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = env_duration_ms("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "60s")
# A statement running (or recorded by pg_stat_statements) for this many milliseconds or longer is slow: the database
# health page of the console lists it and /metrics counts it (workflow_db_slow_statements).
DB_SLOW_QUERY_MS = int(os.environ.get("DB_SLOW_QUERY_MS", "1000"))

# DATABASE_PGBOUNCER: DATABASE_URL leads to PgBouncer in transaction mode, where one client's transactions may each
# run on a different server session, so nothing may rest on the session (README, "Behind PgBouncer"): no connection
# options (PgBouncer refuses or drops them: the roles carry the time limits, and a login acts as DATABASE_SET_ROLE by
# its default role in the database, which core.pgbouncer checks when a process first connects), no server-side cursors
# (Django's iterator() outside a transaction holds one in the session), and prepared statements only where
# PgBouncer tracks them (1.21+ with max_prepared_statements, checked at start by core.pgbouncer). Nothing in the
# application LISTENs; NOTIFY (pg_notify inside a transaction) passes. DATABASE_MIGRATE_URL and DATABASE_ADMIN_URL
# must lead to the server itself: migrate and create_database_roles set session state and take session locks.
DATABASE_PGBOUNCER = env_bool("DATABASE_PGBOUNCER", False)
# DATABASE_LISTEN_URL: a direct address of the primary for the one LISTEN connection per process that wakes long
# polls of external tasks (tasks/external/wakeups.py). Behind PgBouncer in transaction mode it is needed for the
# wake-ups; without it they are off there and long polls answer within their recheck interval.
DATABASE_LISTEN_URL = os.environ.get("DATABASE_LISTEN_URL", "")
DATABASE_TIMEOUTS_IN_OPTIONS = env_bool("DATABASE_TIMEOUTS_IN_OPTIONS", not DATABASE_PGBOUNCER)
if DATABASE_PGBOUNCER and DATABASE_TIMEOUTS_IN_OPTIONS:
    raise ImproperlyConfigured(
        "DATABASE_TIMEOUTS_IN_OPTIONS=true cannot work with DATABASE_PGBOUNCER=true: PgBouncer does not pass "
        "connection options on. Leave it unset: the database roles carry the time limits (create_database_roles)."
    )


def session_timeout_options() -> str:
    """The timeouts as libpq startup options (milliseconds; 0 is no limit, also overriding a role's setting)."""
    return (
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT} -c lock_timeout={DATABASE_LOCK_TIMEOUT} "
        f"-c idle_in_transaction_session_timeout={DATABASE_IDLE_IN_TRANSACTION_TIMEOUT}"
    )


def database_settings(url: str) -> dict:
    """Django's settings for one database URL, with the session timeouts added to the URL's own options."""
    database = database_url.parse(url) if url else {**_embedded, "USER": "workflow_app"}
    if DATABASE_TIMEOUTS_IN_OPTIONS:
        options = database.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} {session_timeout_options()}".strip()
    return database


if DATABASE_URL:
    MIGRATE_DATABASE = database_url.parse(os.environ.get("DATABASE_MIGRATE_URL") or DATABASE_URL)
    # The superuser connection `manage.py create_database_roles` makes the roles with.
    ADMIN_DATABASE = database_url.parse(os.environ.get("DATABASE_ADMIN_URL") or DATABASE_URL)
else:
    _embedded = {"ENGINE": "django.db.backends.postgresql", **embedded.embedded_postgres_settings(BASE_DIR)}
    MIGRATE_DATABASE = {**_embedded, "USER": "workflow_owner"}
    ADMIN_DATABASE = {**_embedded, "NAME": "postgres"}

DATABASES = {"default": database_settings(DATABASE_URL)}

# A streaming replica (a hot standby of the primary) for the reads that tolerate a few seconds of lag
# (core/replica.py says which, and how they fall back to the primary). Its sessions are the application's: the
# same login and DATABASE_SET_ROLE, so row-level security and the row scope apply there as on the primary (not
# workflow_reporting, which reads every row). Lag-tolerant reads go to it while it is at most
# DATABASE_REPLICA_MAX_LAG_SECONDS behind, checked at most every DATABASE_REPLICA_CHECK_SECONDS per process.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
DATABASE_REPLICA_MAX_LAG_SECONDS = env_seconds("DATABASE_REPLICA_MAX_LAG_SECONDS", 5.0)
DATABASE_REPLICA_CHECK_SECONDS = env_seconds("DATABASE_REPLICA_CHECK_SECONDS", 1.0)
# A replica that does not answer must not hold up a request for long: the primary answers instead.
REPLICA_CONNECT_TIMEOUT_SECONDS = 2
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_settings(DATABASE_REPLICA_URL)
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT_SECONDS)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]

DATABASE_SET_ROLE = os.environ.get("DATABASE_SET_ROLE", "")
if DATABASE_SET_ROLE:
    if not DATABASE_SET_ROLE.replace("_", "").isalnum():
        raise ImproperlyConfigured(f"DATABASE_SET_ROLE must be a role name, not {DATABASE_SET_ROLE!r}")
    for _alias, _database in DATABASES.items():
        if DATABASE_PGBOUNCER and _alias == "default":
            continue  # PgBouncer passes no options on: the login role carries it (README, PgBouncer)
        _options = _database.setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c role={DATABASE_SET_ROLE}".strip()
if DATABASE_PGBOUNCER:
    if "options" in DATABASES["default"].get("OPTIONS", {}):
        raise ImproperlyConfigured(
            "DATABASE_URL has options=..., which PgBouncer (DATABASE_PGBOUNCER=true) does not pass on: set them on "
            "the database role instead (ALTER ROLE ... SET)"
        )
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

DATABASE_POOL = env_bool("DATABASE_POOL", False)
DATABASE_POOL_MAX_SIZE = int(os.environ.get("DATABASE_POOL_MAX_SIZE", "20"))
for _database in DATABASES.values():
    if DATABASE_POOL:
        # Django's native psycopg pool; it requires persistent connections to be off.
        _database["CONN_MAX_AGE"] = 0
        _database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 10,
        }
    else:
        _database["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
        _database["CONN_HEALTH_CHECKS"] = True
# Parameters are bound on the client and nothing is prepared, as Django does by default; that also works behind
# PgBouncer in transaction mode. DATABASE_PREPARED_STATEMENTS=true turns on the supported way to prepare: OPTIONS
# server_side_binding, with psycopg preparing a statement once it has run PREPARE_THRESHOLD times on a connection.
# Behind PgBouncer that needs 1.21+ with max_prepared_statements (the application refuses to start otherwise).
# bench/binding.py measures it; bench/RESULTS.md has what it gained and why it is off.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", False)
PREPARE_THRESHOLD = 5  # psycopg's own default
if DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": PREPARE_THRESHOLD}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# How long a queue's business calendar stays cached (queues/calendar_cache.py); edits through the models invalidate
# it at once. Off without REDIS_URL: a per-process cache cannot see another process's edit.
WORK_CALENDAR_CACHE_SECONDS = int(os.environ.get("WORK_CALENDAR_CACHE_SECONDS", "300" if REDIS_URL else "0"))
# How long a list keeps the planner's estimate of its scope, the "about N" of its count (core/estimates.py: the
# case list and the queue page); it moves only with ANALYZE. 0 plans it on every request.
LIST_ESTIMATE_CACHE_SECONDS = int(os.environ.get("LIST_ESTIMATE_CACHE_SECONDS", "300"))
# SLA-risk forecast (tasks/forecast/): a task is "at risk" when its probability of missing its due date is at least
# this; the same figure the badge, the dashboard count, the API's at_risk and the metric use.
SLA_RISK_THRESHOLD = float(os.environ.get("SLA_RISK_THRESHOLD", "0.5"))

# --- Email ----------------------------------------------------------------------------
# EMAIL_URL (parsed by dj-email-url: smtp://user:password@host:587/?tls=True, smtps://… for implicit TLS,
# console:// or dummy://) or the plain EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD,
# EMAIL_USE_TLS / EMAIL_USE_SSL; a plain variable wins over the same part of EMAIL_URL. With neither, mail is
# written to the console (nothing leaves the machine: the demo, development, tests without a receiver).
_email = dj_email_url.parse(os.environ["EMAIL_URL"]) if os.environ.get("EMAIL_URL") else {}
_email_host = os.environ.get("EMAIL_HOST", _email.get("EMAIL_HOST") or "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    _email.get("EMAIL_BACKEND")
    or (
        "django.core.mail.backends.smtp.EmailBackend"
        if _email_host
        else "django.core.mail.backends.console.EmailBackend"
    ),
)
EMAIL_HOST = _email_host or "localhost"
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or _email.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", _email.get("EMAIL_HOST_USER") or "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", _email.get("EMAIL_HOST_PASSWORD") or "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(_email.get("EMAIL_USE_TLS")))
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", bool(_email.get("EMAIL_USE_SSL")))
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (implicit TLS) exclude each other")
EMAIL_TIMEOUT = env_seconds("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", _email.get("DEFAULT_FROM_EMAIL") or "workflow@localhost")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", _email.get("SERVER_EMAIL") or DEFAULT_FROM_EMAIL)
# The site's address as links in emails give it (summaries link to the console and to tasks).
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000").rstrip("/")

# --- Notifications (tasks/notifications.py) -------------------------------------------
# In-app notifications are short-lived: a daily job deletes read ones after NOTIFICATIONS_KEEP_READ_DAYS and every
# one after NOTIFICATIONS_KEEP_DAYS.
NOTIFICATIONS_KEEP_READ_DAYS = int(os.environ.get("NOTIFICATIONS_KEEP_READ_DAYS", "7"))
NOTIFICATIONS_KEEP_DAYS = int(os.environ.get("NOTIFICATIONS_KEEP_DAYS", "30"))

# --- Authentication -------------------------------------------------------------------
AUTH_USER_MODEL = "entitlements.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user; every request is authenticated
GUARDIAN_RAISE_403 = False
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes) for /accounts/login/ and /admin/login/: after AXES_FAILURE_LIMIT failures of one
# username from one address, that pair is locked out for AXES_COOLOFF_MINUTES (superusers unlock it in the admin,
# "Access attempts"). Attempts are kept in the database.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "entitlements.authentication.client_address"  # the address the audit records
AXES_VERBOSE = False

# API tokens (django-rest-knox, entitlements.ApiToken): only a digest is stored; each token expires.
API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", "90"))
KNOX_TOKEN_MODEL = "entitlements.ApiToken"
REST_KNOX = {"TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Token", "AUTO_REFRESH": False}

# Failed authentications (bad API tokens, wrong passwords): the audit keeps the first of each address in each
# window as a LOGIN_FAILURE row and counts the rest in entitlements.AuthFailureTally.
AUTH_FAILURE_AUDIT_WINDOW_SECONDS = int(os.environ.get("AUTH_FAILURE_AUDIT_WINDOW_SECONDS", "300"))

SESSION_COOKIE_HTTPONLY = True

# --- HTTPS and browser protections ------------------------------------------------------
# HTTPS=true when the site is served over HTTPS (directly or behind a proxy that terminates TLS): HSTS, a
# redirect of plain HTTP to HTTPS, and cookies sent over HTTPS only. Behind a proxy, set
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the header the proxy sets, and strips from clients' requests).
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapers on the private network
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SESSION_COOKIE_SECURE = HTTPS or env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): only this site's own scripts, styles and fonts; no inline script or
# style anywhere (the pages, admin and the Swagger UI at /api/docs/ keep to that), no framing, forms post here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = embedded.var_dir(BASE_DIR) / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "entitlements.authentication.TokenAuthentication",
        "entitlements.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "entitlements.throttling.AccountRateThrottle",
        "entitlements.throttling.AnonymousAddressRateThrottle",
    ],
    # "N/second|minute|hour|day"; "off" (or empty) turns one off. bench/claim.py turns them off.
    "DEFAULT_THROTTLE_RATES": {
        "account": env_rate("API_THROTTLE_USER_RATE", "3000/minute"),
        "anonymous": env_rate("API_THROTTLE_ANON_RATE", "60/minute"),
        # Failed token authentications per address: past it, 429 before the token is even looked up.
        "bad_token": env_rate("API_THROTTLE_BAD_TOKEN_RATE", "20/minute"),
    },
}
# JSON request bodies nested deeper than this are refused with 400 (core/parsers.py).
API_MAX_JSON_DEPTH = int(os.environ.get("API_MAX_JSON_DEPTH", "32"))
SPECTACULAR_SETTINGS = {
    "TITLE": "Workflow and case management API",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Text a field refuses when blank says so (minLength 1, and a non-space pattern: DRF trims input first).
    "ENFORCE_NON_BLANK_FIELDS": True,
    "ENUM_NAME_OVERRIDES": {"AllegationTypeEnum": "cases.models.AllegationType"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_database_conflict",
        "core.api.document_unsupported_media_type",
        "core.api.document_blank_strings",
    ],
}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if CELERY_BROKER_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = embedded.filesystem_broker(BASE_DIR)
CELERY_TASK_IGNORE_RESULT = (
    True  # jobs that leave a record say ignore_result=False (tasks/jobs.py, tasks/sla/alerts.py)
)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Write each job's "last run" to the database as soon as beat sends it (admin → Periodic tasks), not every three
# minutes: the jobs are few and run minutes apart.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Workflow model scripts (tasks/bpmn/script_sandbox.py) ----------------------------
# Every condition, timer expression and script runs in a child process, stopped after this much CPU time and
# memory; each web or worker process keeps at most WORKFLOW_SCRIPT_POOL_SIZE such children.
WORKFLOW_SCRIPT_CPU_SECONDS = float(os.environ.get("WORKFLOW_SCRIPT_CPU_SECONDS", "1"))
WORKFLOW_SCRIPT_MEMORY_MB = int(os.environ.get("WORKFLOW_SCRIPT_MEMORY_MB", "64"))
WORKFLOW_SCRIPT_POOL_SIZE = int(os.environ.get("WORKFLOW_SCRIPT_POOL_SIZE", "4"))

# --- External tasks (tasks/external/) ---------------------------------------------------
# A long-polling fetch-and-lock waits at most this long, whatever the worker asks (Camunda's asyncResponseTimeout):
# a waiting request holds a web thread (gthread) and a database connection; keep it under the server's timeout.
EXTERNAL_TASK_LONG_POLL_MAX_SECONDS = env_seconds("EXTERNAL_TASK_LONG_POLL_MAX_SECONDS", 30)
# While waiting, it also looks again this often: an expired lock or a retry wait that ran out sends no NOTIFY.
EXTERNAL_TASK_LONG_POLL_RECHECK_SECONDS = env_seconds("EXTERNAL_TASK_LONG_POLL_RECHECK_SECONDS", 5)
EXTERNAL_TASK_MAX_TASKS_PER_FETCH = int(os.environ.get("EXTERNAL_TASK_MAX_TASKS_PER_FETCH", "100"))
# The worker id and lock of the Celery job that runs the Python handlers (tasks/external/handlers.py).
EXTERNAL_TASK_HANDLER_LOCK_SECONDS = env_seconds("EXTERNAL_TASK_HANDLER_LOCK_SECONDS", 300)
# The worker account the Celery handlers act as (it needs tasks.work_external_tasks), and the modules that register
# handlers with @external_task_handler (tasks/external/registry.py).
EXTERNAL_TASK_HANDLER_ACCOUNT = os.environ.get("EXTERNAL_TASK_HANDLER_ACCOUNT", "celery-external-tasks")
EXTERNAL_TASK_HANDLER_MODULES = env_list("EXTERNAL_TASK_HANDLER_MODULES", [])

# --- Metrics (/metrics, Prometheus text format) ------------------------------------------
# Served to these networks, or to any client sending `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# LOG_FORMAT=json: one JSON object a line (python-json-logger), for a log shipper; otherwise plain lines. Either way
# each line carries the request id of the request (or of the request that queued the job) it belongs to.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"correlation_id": "request_id", "asctime": "time", "levelname": "level"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # pgserver (the embedded PostgreSQL) logs every start-up step and, at exit, "exiting <pid> remaining pids" at
    # INFO: noise on every command; from an exit handler it also writes to streams a test runner has closed.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "spiff": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        # django-guid logs each request's id decision ("Header X-Request-ID was not found ... Generated new GUID") at
        # INFO: a line a request that says nothing the request's own lines do not.
        "django_guid": {"level": "WARNING"},
    },
}

# The request id: a client's X-Request-ID is kept when it is a UUID, else one is made; it is returned in the
# X-Request-ID header and in error bodies, and travels to the Celery jobs the request queues.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}

# Error tracking (optional): SENTRY_DSN sends unhandled errors of web requests and jobs to Sentry (or a compatible
# service), without personal data, each tagged with its request id; SENTRY_ENVIRONMENT names the deployment.
if SENTRY_DSN:
    import sentry_sdk

    from core.errors_tracking import event_with_request_id

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
        send_default_pii=False,
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")),
        before_send=event_with_request_id,
    )

# Index names follow the seed (e.g. idx_workflow_tasks_queue_status_priority); Django caps them at 30
# characters for Oracle's sake, PostgreSQL allows 63.
SILENCED_SYSTEM_CHECKS = ["models.E034"]
