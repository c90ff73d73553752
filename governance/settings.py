"""Steward settings: everything comes from the environment, with safe local defaults.

STEWARD_ENV=local (the default) generates a secret key and an encryption key into var/
on first use; STEWARD_ENV=production requires SECRET_KEY and ENCRYPTION_KEYS and turns
on the HTTPS-only settings that `manage.py check --deploy` asks for.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default=False):
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("STEWARD_VAR_DIR", str(BASE_DIR / "var")))
STEWARD_ENV = env("STEWARD_ENV", "local")
if STEWARD_ENV not in {"local", "production"}:
    raise ImproperlyConfigured("STEWARD_ENV must be 'local' or 'production'")
PRODUCTION = STEWARD_ENV == "production"


def local_secret(filename, make):
    """Read a generated secret from var/, creating it (mode 600) on first local use."""
    path = VAR_DIR / filename
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def required(name):
    raise ImproperlyConfigured(f"{name} must be set when STEWARD_ENV=production")


DEBUG = env_bool("DEBUG", not PRODUCTION)
SECRET_KEY = env("SECRET_KEY") or (
    required("SECRET_KEY")
    if PRODUCTION
    else local_secret("secret_key", lambda: secrets.token_urlsafe(64))
)


def _fernet_key():
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# Newest key first; older keys only decrypt until `manage.py rotate_keys` has run.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS") or env_list("ENCRYPTION_KEY")
if not ENCRYPTION_KEYS:
    ENCRYPTION_KEYS = [
        required("ENCRYPTION_KEYS") if PRODUCTION else local_secret("encryption.key", _fernet_key)
    ]

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver"
)
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "governance.apps.StewardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # search lookups; inert on other databases
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "corsheaders",
    "django_prometheus",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "governance",
    "sources",
    "catalog",
    "lineage",
    "security",
    "compliance",
    "backups",
    "notifications",
    "reports",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "governance.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "governance.middleware.SecurityHeadersMiddleware",
    "governance.middleware.UnstorableTextMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "governance.uploads.RequestBodyLimitMiddleware",  # before anything reads a body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "governance.middleware.ServiceUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

if PRODUCTION:  # gunicorn serves the collected static files; runserver does it locally
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "governance" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'steward.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(env("DB_CONN_MAX_AGE", "60")))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web server, worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "governance.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTHENTICATION_BACKENDS = [
    "governance.auth.RateLimitedModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# API tokens expire this many days after they are made.
API_TOKEN_EXPIRY_DAYS = int(env("API_TOKEN_EXPIRY_DAYS", "90"))
# Failed sign-ins within the window before one username is refused at one address, and
# before one address is refused for every username (see governance.auth). The counts live in
# the cache when it is Redis (shared by every worker), in the database otherwise.
LOGIN_FAILURE_LIMIT = int(env("LOGIN_FAILURE_LIMIT", "10"))
LOGIN_FAILURE_ADDRESS_LIMIT = int(env("LOGIN_FAILURE_ADDRESS_LIMIT", "100"))
LOGIN_FAILURE_WINDOW = int(env("LOGIN_FAILURE_WINDOW", "300"))
LOGIN_FAILURE_STORE = "cache" if REDIS_URL else "database"
# Two-factor sign-in to the admin (governance.mfa): required for superusers and the Admin
# and Steward roles when on; anyone who enrolled an authenticator uses it either way.
MFA_REQUIRED = env_bool("MFA_REQUIRED", PRODUCTION)
OTP_TOTP_ISSUER = "Steward"
# Proxies (addresses or CIDRs) whose X-Forwarded-For is believed for the client's address.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
try:
    [ipaddress.ip_network(cidr, strict=False) for cidr in TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None
# Seconds a user's roles and group memberships are shared between requests through the
# cache; any change to them ends every cached copy at once. Only a cache that all web and
# worker processes share can tell them of a change, so without Redis each request loads them.
PERMISSION_CACHE_SECONDS = int(env("PERMISSION_CACHE_SECONDS", "300" if REDIS_URL else "0"))
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Client addresses (IPs or networks) that may read /metrics, the API schema and the API docs
# without signing in: everyone locally, nobody in production unless listed (see internal.py).
METRICS_ALLOW = env_list("METRICS_ALLOW", "" if PRODUCTION else "0.0.0.0/0,::/0")
for _entry in METRICS_ALLOW:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOW: {exc}") from None

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(env("SESSION_COOKIE_AGE", str(8 * 3600)))
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.TokenAuthentication",
        "governance.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "governance.api.parsers.JSONParser",
        "governance.api.parsers.FormParser",
        "governance.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "governance.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "governance.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "governance.api.throttling.AnonRateThrottle",
        "governance.api.throttling.UserRateThrottle",
        "governance.api.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", "60/min"),
        "user": env("THROTTLE_USER", "6000/min"),
        "login": env("THROTTLE_LOGIN", "10/min"),
        "connection-test": env("THROTTLE_CONNECTION_TEST", "30/min"),
        "lineage-sql": env("THROTTLE_LINEAGE_SQL", "120/min"),
    },
    "EXCEPTION_HANDLER": "governance.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": "Data governance console: sources, catalog, lineage, compliance.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Request bodies are documented as JSON (bulk import documents its multipart form).
    # Form bodies are also read, by HTML form rules (an absent or "0" checkbox is false)
    # that a JSON schema cannot state.
    "PARSER_WHITELIST": ["governance.api.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "governance.models.JobRun.Status",
        "ClassificationStatusEnum": "catalog.models.Classification.Status",
    },
}

# Celery: Redis when REDIS_URL is set, otherwise an embedded SQLite broker so that the
# worker and beat still run on a laptop with nothing else installed.
CELERY_BROKER_URL = REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None  # job runs are the results
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(env("CELERY_TASK_SOFT_TIME_LIMIT", "3300"))
CELERY_TASK_TIME_LIMIT = int(env("CELERY_TASK_TIME_LIMIT", "3600"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if REDIS_URL:  # unacknowledged tasks come back only after the longest task could have run
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Running job runs stamp a heartbeat every JOB_HEARTBEAT_INTERVAL seconds; every minute the
# sweeper ends the runs silent for JOB_STALLED_AFTER seconds (their worker died) and retries
# them. Beat writes this entry into its database schedule when it starts.
JOB_HEARTBEAT_INTERVAL = float(env("JOB_HEARTBEAT_INTERVAL", "30"))
JOB_STALLED_AFTER = float(env("JOB_STALLED_AFTER", "180"))
if JOB_STALLED_AFTER < 3 * JOB_HEARTBEAT_INTERVAL:
    raise ImproperlyConfigured("JOB_STALLED_AFTER must be at least 3 times JOB_HEARTBEAT_INTERVAL")
CELERY_BEAT_SCHEDULE = {
    "Sweep job runs whose worker died": {"task": "governance.sweep_job_runs", "schedule": 60.0}
}

# Where sources may point. Loopback and link-local addresses are refused unless allowlisted,
# cloud metadata addresses always; private ranges too when SOURCE_BLOCK_PRIVATE_NETWORKS is on
# (the default in production: a console reachable from outside must not probe the network).
SOURCE_HOSTS_ALLOW = env_list("SOURCE_HOSTS_ALLOW")
SOURCE_BLOCK_PRIVATE_NETWORKS = env_bool("SOURCE_BLOCK_PRIVATE_NETWORKS", PRODUCTION)
SOURCE_SQLITE_DIR = env("SOURCE_SQLITE_DIR", str(VAR_DIR / "sources"))
SOURCE_CONNECT_TIMEOUT = float(env("SOURCE_CONNECT_TIMEOUT", "5"))
SOURCE_STATEMENT_TIMEOUT = float(env("SOURCE_STATEMENT_TIMEOUT", "30"))

# Lineage: graph walks from the database (the source of truth) or from the Neo4j projection,
# which is kept only when NEO4J_BOLT_URL is set.
NEO4J_BOLT_URL = env("NEO4J_BOLT_URL", "")
LINEAGE_GRAPH_BACKEND = env("LINEAGE_GRAPH_BACKEND", "database")
if LINEAGE_GRAPH_BACKEND not in ("database", "neo4j"):
    raise ImproperlyConfigured("LINEAGE_GRAPH_BACKEND must be 'database' or 'neo4j'")
if LINEAGE_GRAPH_BACKEND == "neo4j" and not NEO4J_BOLT_URL:
    raise ImproperlyConfigured("LINEAGE_GRAPH_BACKEND=neo4j needs NEO4J_BOLT_URL")
OPENLINEAGE_MAX_EVENTS = int(env("OPENLINEAGE_MAX_EVENTS", "500"))
OPENLINEAGE_MAX_BYTES = int(env("OPENLINEAGE_MAX_BYTES", str(16 * 1024 * 1024)))

# The largest request body (413 above it, from Content-Length, before it is read); the bulk
# import and OpenLineage take their own limits (governance/uploads.py).
REQUEST_MAX_BYTES = int(env("REQUEST_MAX_BYTES", str(10 * 1024 * 1024)))

# Bulk import: refused above these sizes; files above the threshold run as a job. With the
# XLSX limits below they keep any accepted file's import under 500 MB (bench/bulk_limits.py);
# the catalog of 10,000 tables of 25 fields that bench/bulk.py moves is 104 MB of JSON
# holding 310,000 objects.
BULK_IMPORT_MAX_BYTES = int(env("BULK_IMPORT_MAX_BYTES", str(128 * 1024 * 1024)))
BULK_IMPORT_MAX_ROWS = int(env("BULK_IMPORT_MAX_ROWS", "400000"))
# A YAML document takes about half as much memory again as the same catalog in JSON.
BULK_IMPORT_MAX_YAML_BYTES = int(env("BULK_IMPORT_MAX_YAML_BYTES", str(64 * 1024 * 1024)))
BULK_IMPORT_JOB_THRESHOLD_BYTES = int(env("BULK_IMPORT_JOB_THRESHOLD_BYTES", str(5 * 1024 * 1024)))
# JSON and YAML nesting (the document needs 7 levels); errors of a refused file per page.
BULK_IMPORT_MAX_DEPTH = int(env("BULK_IMPORT_MAX_DEPTH", "32"))
BULK_IMPORT_ERROR_PAGE_SIZE = int(env("BULK_IMPORT_ERROR_PAGE_SIZE", "1000"))
# XLSX, checked before openpyxl opens a file (governance/bulk/xlsx.py). Measured together with
# bench/bulk_limits.py: a file at all of them at once imports in under 500 MB.
_MB = 1024 * 1024
BULK_IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES = int(
    env("BULK_IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES", str(200 * _MB))
)
BULK_IMPORT_MAX_XLSX_ROWS = int(env("BULK_IMPORT_MAX_XLSX_ROWS", "250000"))
BULK_IMPORT_MAX_XLSX_CELLS = int(env("BULK_IMPORT_MAX_XLSX_CELLS", "3000000"))
BULK_IMPORT_MAX_XLSX_SHARED_STRINGS = int(env("BULK_IMPORT_MAX_XLSX_SHARED_STRINGS", "1000000"))
BULK_IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES = int(
    env("BULK_IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES", str(64 * _MB))
)
BULK_IMPORT_MAX_XLSX_PART_BYTES = int(env("BULK_IMPORT_MAX_XLSX_PART_BYTES", str(5 * _MB)))
BULK_IMPORT_MAX_XLSX_ENTRIES = int(env("BULK_IMPORT_MAX_XLSX_ENTRIES", "200"))
BULK_IMPORT_MAX_XLSX_RATIO = int(env("BULK_IMPORT_MAX_XLSX_RATIO", "200"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "governance.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
