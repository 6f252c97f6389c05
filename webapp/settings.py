"""Loopline settings: one module, read from the environment through ``webapp.env``.

Defaults give the embedded setup (SQLite, a filesystem Celery broker, a local artifact directory);
``DATABASE_URL``, ``CELERY_BROKER_URL`` and friends switch to the production-shaped stack.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LOOPLINE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-only-for-debug" if DEBUG else None)
if not DEBUG and SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured("SECRET_KEY must be set to a real secret when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "webapp",
    "labeling",
    "modeling",
    "monitoring",
]

MIDDLEWARE = [
    "webapp.observability.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from the web server too (compressed, cache-busted names); no separate file server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.middleware.LazyMessageMiddleware",  # Django's MessageMiddleware, its storage built on first use
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "webapp.middleware.ApplicationErrorMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

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
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'loopline.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL + IMMEDIATE transactions let the web process and the embedded workers write side by side.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so that worker processes started by integration tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Uploads, artifacts, limits ------------------------------------------------------------
ARTIFACT_ROOT = Path(env_str("ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
IMPORT_SYNC_MAX_ROWS = env_int("IMPORT_SYNC_MAX_ROWS", 5000, minimum=1)
# Uploads larger than this are spooled to disk by Django rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
HF_HUB_OFFLINE = env_bool("HF_HUB_OFFLINE", False)

# --- Celery ---------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "memory", "sqla+sqlite")
)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
JOB_HARD_TIME_LIMIT = env_int("JOB_HARD_TIME_LIMIT", 6 * 3600, minimum=60)
JOB_SOFT_TIME_LIMIT = env_int("JOB_SOFT_TIME_LIMIT", JOB_HARD_TIME_LIMIT - 300, minimum=30)
if JOB_SOFT_TIME_LIMIT >= JOB_HARD_TIME_LIMIT:
    raise ImproperlyConfigured("JOB_SOFT_TIME_LIMIT must be below JOB_HARD_TIME_LIMIT.")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis re-delivers an unacknowledged task after the visibility timeout: it must outlast the
    # longest job, or an acks_late training run would be started a second time while still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOB_HARD_TIME_LIMIT + 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_TIME_LIMIT = JOB_HARD_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT

# --- Model server and the prediction API ----------------------------------------------------
# Where web workers reach the model server (`manage.py model_server`): a Unix socket (unix:/path)
# for the embedded stack, host:port in compose. The server binds the same address unless told otherwise.
MODEL_SERVER_ADDRESS = env_str("MODEL_SERVER_ADDRESS", f"unix:{VAR_DIR / 'model-server.sock'}")
MODEL_SERVER_TIMEOUT_SECONDS = env_int("MODEL_SERVER_TIMEOUT_SECONDS", 30, minimum=1)
MODEL_SERVER_DEVICE = env_str("MODEL_SERVER_DEVICE", "auto")
if MODEL_SERVER_DEVICE not in {"auto", "cpu", "cuda"}:
    raise ImproperlyConfigured(f"MODEL_SERVER_DEVICE={MODEL_SERVER_DEVICE!r} must be auto, cpu or cuda.")
# Compute slots: batches run side by side, each with THREADS torch threads. 0 = automatic: one slot on a
# GPU; on a CPU one slot per core (at most 4) with the cores shared among them.
MODEL_SERVER_WORKERS = env_int("MODEL_SERVER_WORKERS", 0, minimum=0)
MODEL_SERVER_THREADS = env_int("MODEL_SERVER_THREADS", 0, minimum=0)
# Dynamic batching: the longest wait of a batch's oldest request, batch limits, and the queue bound
# past which requests are refused (503 + Retry-After) instead of waiting without limit. The wait's
# default (-1) depends on the device (model_server.batch_policy): 5 ms on a CPU, none on a GPU.
MODEL_SERVER_MAX_WAIT_MS = env_int("MODEL_SERVER_MAX_WAIT_MS", -1, minimum=0)
# Forward passes in a child process per served version (modeling.serving.server.process_runner):
# auto = on a GPU only, where a forward retakes the GIL at every operator; on | off.
MODEL_SERVER_FORWARD_PROCESS = env_str("MODEL_SERVER_FORWARD_PROCESS", "auto")
if MODEL_SERVER_FORWARD_PROCESS not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(
        f"MODEL_SERVER_FORWARD_PROCESS={MODEL_SERVER_FORWARD_PROCESS!r} must be auto, on or off."
    )
MODEL_SERVER_MAX_BATCH_TEXTS = env_int("MODEL_SERVER_MAX_BATCH_TEXTS", 64, minimum=1)
MODEL_SERVER_MAX_BATCH_TOKENS = env_int("MODEL_SERVER_MAX_BATCH_TOKENS", 16_384, minimum=1)
MODEL_SERVER_MAX_QUEUE_TEXTS = env_int("MODEL_SERVER_MAX_QUEUE_TEXTS", 2_048, minimum=1)
# How often the model server reads the alias table (promotions hot-swap within about this long).
MODEL_SERVER_POLL_MS = env_int("MODEL_SERVER_POLL_MS", 1_000, minimum=50)
# The prediction log's write-behind buffer: its flush interval is the loss window on a crash.
PREDICTION_LOG_FLUSH_MS = env_int("PREDICTION_LOG_FLUSH_MS", 500, minimum=10)
PREDICTION_LOG_MAX_ROWS = env_int("PREDICTION_LOG_MAX_ROWS", 200_000, minimum=1_000)
# How long a web process reuses a project's release policy and aliases (the model server polls as often),
# and, for predict only, a valid token's user and a granted membership (0: check every request).
API_SERVING_STATE_TTL_MS = env_int("API_SERVING_STATE_TTL_MS", 1_000, minimum=0)
API_AUTH_CACHE_MS = env_int("API_AUTH_CACHE_MS", 1_000, minimum=0)
# Per-token rate limits are counted in a store every web worker shares: Redis when the broker is
# Redis (or set redis://... here), else files under the var directory (the embedded single-host stack).
API_RATE_LIMIT_STORE = env_url(
    "API_RATE_LIMIT_STORE",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else f"file://{VAR_DIR / 'ratelimit'}",
    schemes=("redis", "rediss", "file"),
)

# Django's cache (monitoring summaries until the next rollup fold, agreement figures): per process by
# default; redis://host:6379/2 shares it between web workers (docker-compose sets it).
CACHE_URL = env_url("CACHE_URL", "locmem://", schemes=("locmem", "redis", "rediss"))
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL, "KEY_PREFIX": "loopline"}
        if CACHE_URL.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "loopline"}
    )
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF takes the 401 challenge (WWW-Authenticate: Token) from the first class, so an
    # anonymous or bad-token call gets 401 rather than the 403 that session auth would give.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")
SPECTACULAR_SETTINGS = {
    "TITLE": "Loopline API",
    "DESCRIPTION": "Human-in-the-loop labeling and monitoring for transformer text classifiers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Email and webhooks ---------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "") or None
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = EMAIL_HOST or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "loopline@localhost")
# Where people reach this deployment, e.g. https://loopline.example.com: alert e-mails and webhooks link
# to absolute URLs under it (paths only when unset).
PUBLIC_BASE_URL = (env_str("PUBLIC_BASE_URL", "") or "").rstrip("/")
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)

# --- Logging: JSON lines; ids and durations, never item texts --------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "webapp.observability.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.server": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

# --- Monitoring: traffic rollups and the audit sample ------------------------------------------------
# Raw prediction-log and prediction-error rows older than this are deleted (the rollups keep the counts).
LOOPLINE_PREDICTION_LOG_RETENTION_DAYS = env_int("LOOPLINE_PREDICTION_LOG_RETENTION_DAYS", 30, minimum=1)
# At most this many audit-sampled predictions per project and day become labeling queue items.
LOOPLINE_AUDIT_DAILY_CAP = env_int("LOOPLINE_AUDIT_DAILY_CAP", 200, minimum=0)
