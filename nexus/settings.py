"""Nexus settings: every value comes from the environment, its default on the same line.

With nothing set, Nexus runs on the embedded default: an SQLite file, an in-process
cache and channel layer, and the offline `demo` provider. Production sets DATABASE_URL
(PostgreSQL) and REDIS_URL. A bad value stops the process at start, naming the variable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from nexus.lib.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

# Lets Django's generic classes be subscripted at run time, as their type stubs describe them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", "true")
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = "nexus-development-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
# The API's paths, /dashboard (OpenAI's legacy balance, read by NextChat) included; never the admin.
CORS_URLS_REGEX = r"^/(auth|users|keys|chat|llm|billing|system|v1|dashboard|health)(/.*)?$"
# What browsers must be allowed to send: the official OpenAI and Anthropic SDKs (JS, used from a
# page) add their own headers to every request, and a preflight that leaves one out fails the call.
# django-cors-headers matches names exactly, so each is listed.
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",  # the Anthropic JS SDK sets it in a page too; Firefox sends it and asks first
    "last-event-id",
    "x-request-id",
    "x-nexus-save",
    "idempotency-key",
    # the Stainless-generated SDKs' telemetry and helper headers (OpenAI and Anthropic alike)
    "x-stainless-arch",
    "x-stainless-async",
    "x-stainless-custom-event-handler",
    "x-stainless-custom-poll-interval",
    "x-stainless-helper",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-poll-helper",
    "x-stainless-raw-response",
    "x-stainless-read-timeout",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-stream-helper",
    "x-stainless-timeout",
    # OpenAI's
    "openai-beta",
    "openai-organization",
    "openai-project",
    # Anthropic's (/v1/messages authenticates with x-api-key)
    "x-api-key",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-user-profile-id",
    "anthropic-version",
    "anthropic-workspace-id",
)
# What scripts on another origin may read: the SDKs read x-request-id and retry-after. Nexus sends
# none of OpenAI's x-ratelimit-* headers; list them here if it ever does.
CORS_EXPOSE_HEADERS = (
    "x-request-id",
    "retry-after",
    "x-nexus-conversation-id",
    "x-nexus-dropped-params",
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "nexus",
    "accounts",
    "llm",
    "billing",
    "chats",
]

# nexus.middleware's Security, Session, Common, Csrf, Authentication, Message and
# XFrameOptions middlewares are Django's, with their hooks run on the event loop for API
# requests rather than in a thread each.
MIDDLEWARE = [
    "nexus.middleware.RequestIdMiddleware",
    "nexus.middleware.RequestMetricsMiddleware",
    "nexus.middleware.CacheSnapshotMiddleware",
    "nexus.middleware.ErrorEnvelopeMiddleware",
    "nexus.middleware.ChunkedBodyMiddleware",
    "nexus.middleware.SecurityMiddleware",
    "nexus.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "corsheaders.middleware.CorsMiddleware",
    "nexus.middleware.SessionMiddleware",
    "nexus.middleware.CommonMiddleware",
    "nexus.middleware.CsrfViewMiddleware",
    "nexus.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(), for the console
    "nexus.middleware.MessageMiddleware",
    "nexus.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "nexus.urls"
ASGI_APPLICATION = "nexus.asgi.application"
APPEND_SLASH = False

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
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}", schemes=("sqlite", "postgres", "postgresql")
)
DATABASE_POOL_MIN_SIZE = env_int("DATABASE_POOL_MIN_SIZE", "2", minimum=0)
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", "20", minimum=1)
DATABASE_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", "10", minimum=0.1)
# At start, a server lowers its pool to its share of what PostgreSQL allows: max_connections
# less the reserved ones and DATABASE_RESERVED_CONNECTIONS (migrations, psql, cron), split
# between SERVER_PROCESSES processes (nexus.lib.database_pool). Off behind PgBouncer, whose
# clients are not the server's connections.
DATABASE_POOL_FIT = env_bool("DATABASE_POOL_FIT", "true")
DATABASE_RESERVED_CONNECTIONS = env_int("DATABASE_RESERVED_CONNECTIONS", "10", minimum=0)
SERVER_PROCESSES = env_int("SERVER_PROCESSES", "1", minimum=1)
# AI calls wait on the event loop for a database thread (nexus.lib.db_threads): this many at
# most per process, this long at most, then 503 busy with Retry-After.
DATABASE_QUEUE_MAX = env_int("DATABASE_QUEUE_MAX", "1000", minimum=0)
DATABASE_QUEUE_TIMEOUT = env_float("DATABASE_QUEUE_TIMEOUT", "10", minimum=0.1)
# While PostgreSQL is known down, requests fail at once and a probe reconnects this often.
DATABASE_PROBE_INTERVAL = env_float("DATABASE_PROBE_INTERVAL", "1", minimum=0.1)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3's pool: connections are reused across requests, and a restarted
    # PostgreSQL is reconnected to by the pool itself: with health checks on, each connection
    # is checked as it is handed out, so the dead ones a restart leaves are replaced, not
    # given to a request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": DATABASE_POOL_MIN_SIZE,
            "max_size": max(DATABASE_POOL_MAX_SIZE, DATABASE_POOL_MIN_SIZE),
            "timeout": DATABASE_POOL_TIMEOUT,
        },
        "connect_timeout": 5,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, rate-limit counters, channel layer, stream buffers -------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nexus",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
    # The layer waits for messages with BZPOPMIN blocking 5 s (channels_redis's brpop_timeout);
    # redis-py 8's default socket timeout is 5 s too, which closed every socket idle that long.
    # The cache above sends no blocking command, so its 2 s stand.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 2}],
                "prefix": "nexus:channels",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Accounts and authentication -------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's hashers, each taking one of PASSWORD_HASH_CONCURRENCY slots per process first.
PASSWORD_HASHERS = [
    "accounts.hashers.BoundedArgon2PasswordHasher",
    "accounts.hashers.BoundedBCryptSHA256PasswordHasher",
    "accounts.hashers.BoundedPBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A runtime setting's default, as are DEFAULT_MODEL, AI_CALLS_PER_MINUTE, MAX_MESSAGE_CHARS
# and DEFAULT_MONTHLY_BUDGET: operators override them while Nexus runs; read them through
# nexus.lib.runtime, never from here.
REGISTRATION_OPEN = env_bool("REGISTRATION_OPEN", "true")
ACCESS_TOKEN_MINUTES = env_int("ACCESS_TOKEN_MINUTES", "15", minimum=1)
REFRESH_TOKEN_DAYS = env_int("REFRESH_TOKEN_DAYS", "7", minimum=1)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # A changed password ends every session at once: tokens carry a digest of the password hash.
    "CHECK_REVOKE_TOKEN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY", "") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
FRONTEND_URL = env_str("FRONTEND_URL", "http://127.0.0.1:8000")

# --- Sign-in protection (accounts.throttles, accounts.hashers, nexus.lib.client_address) -
# How many proxies in front of Nexus append to X-Forwarded-For; the client address is the
# Nth entry from the right. 0: the socket's address, every forwarded header ignored.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", "0", minimum=0)
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", "5", minimum=1)  # per address + account
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", "20", minimum=1)  # any account
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", "900", minimum=1)  # seconds, sliding
# Two-factor sign-in (accounts.two_factor): staff without a confirmed TOTP device stay out of
# the console. TOTP devices are named after this issuer in authenticator apps.
STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", "false" if DEBUG else "true")
OTP_TOTP_ISSUER = "Nexus"
PASSWORD_HASH_CONCURRENCY = env_int("PASSWORD_HASH_CONCURRENCY", "2", minimum=0)  # per process; 0: unbounded
PASSWORD_HASH_WAIT = env_float("PASSWORD_HASH_WAIT", "1", minimum=0)  # seconds for a slot, then 503 busy
# A runtime setting's default (nexus.lib.runtime): registration attempts per client address.
REGISTRATIONS_PER_HOUR = env_int("REGISTRATIONS_PER_HOUR", "10", minimum=0)  # 0: no limit

# --- Email (password reset) ------------------------------------------------------------
EMAIL_URL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_URL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = EMAIL_URL_HOST
    EMAIL_PORT = env_int("EMAIL_PORT", "587", minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", "true")
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    # Never the console in production: a reset link in the log signs anyone in. Sending fails
    # instead, and `check --deploy` names EMAIL_HOST (nexus.checks).
    EMAIL_BACKEND = "nexus.lib.unconfigured_mail.UnconfiguredEmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Nexus <noreply@localhost>")

# --- LLM providers ---------------------------------------------------------------------
# Fernet key that encrypts provider API keys at rest; derived from SECRET_KEY when unset.
NEXUS_ENCRYPTION_KEY = env_str("NEXUS_ENCRYPTION_KEY", "")
SEED_DEMO_PROVIDER = env_bool("SEED_DEMO_PROVIDER", "true")
LLM_DEMO_TOKEN_DELAY = env_float("LLM_DEMO_TOKEN_DELAY", "0.015", minimum=0)  # seconds per demo token
LLM_RETRY_BASE_DELAY = env_float("LLM_RETRY_BASE_DELAY", "0.5", minimum=0)  # first retry's wait, doubling
LLM_CACHE_SECONDS = env_int("LLM_CACHE_SECONDS", "86400", minimum=1)  # lifetime of cached replies
DEFAULT_MODEL = env_str("DEFAULT_MODEL", "demo")  # used when a chat names no model

# --- Streams ---------------------------------------------------------------------------
# How long a finished turn's events stay available for clients that resume.
STREAM_BUFFER_SECONDS = env_int("STREAM_BUFFER_SECONDS", "600", minimum=1)
# A running turn is re-marked alive in Redis three times per this period; a `streaming`
# reply without the mark, and older than it, belongs to a dead process (repair_streams).
STREAM_ALIVE_SECONDS = env_float("STREAM_ALIVE_SECONDS", "30", minimum=0.3)
# With Redis, how long a finished resumable turn's events also stay in the memory of the
# process that ran it (Redis serves later resumes); a gateway turn's go once read.
STREAM_MEMORY_SECONDS = env_float("STREAM_MEMORY_SECONDS", "30", minimum=0)

# --- Limits and quotas -----------------------------------------------------------------
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", "1048576", minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# The AI surfaces (/v1) take larger bodies: images and files travel inline, base64-encoded.
MAX_AI_REQUEST_BYTES = env_int("MAX_AI_REQUEST_BYTES", "33554432", minimum=1024)
MAX_IMAGE_BYTES = env_int("MAX_IMAGE_BYTES", "20971520", minimum=1024)  # one inline image or file, decoded
# Uploads for attachments (POST /chat/files): one file's size, a user's total, files per message,
# and the types taken (chats.files checks that each file is what its type claims).
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", "20971520", minimum=1)
MAX_USER_FILES_BYTES = env_int("MAX_USER_FILES_BYTES", "524288000", minimum=0)
MAX_ATTACHMENTS = env_int("MAX_ATTACHMENTS", "10", minimum=1)
_UPLOAD_TYPES = "image/png,image/jpeg,image/gif,image/webp,text/plain,text/markdown,text/csv"
_UPLOAD_TYPES += ",application/json,application/pdf"
UPLOAD_TYPES = env_list("UPLOAD_TYPES", _UPLOAD_TYPES)
if set(UPLOAD_TYPES) - set(_UPLOAD_TYPES.split(",")):
    raise ImproperlyConfigured(f"UPLOAD_TYPES may only name types of its default: {_UPLOAD_TYPES}.")
AI_CALLS_PER_MINUTE = env_int("AI_CALLS_PER_MINUTE", "20", minimum=0)
MAX_MESSAGE_CHARS = env_int("MAX_MESSAGE_CHARS", "100000", minimum=1)
DEFAULT_MONTHLY_BUDGET = env_str("DEFAULT_MONTHLY_BUDGET", "10.00")
# A call reserves its input and this much output (or its max_tokens, if smaller) against the
# budget, then a step more each time its reply reaches what is reserved; a budget that cannot
# pay the next step ends the reply there. One step per call in flight is the most a budget
# can be overspent by (when providers count more tokens than Nexus estimated).
RESERVE_OUTPUT_TOKENS = env_int("RESERVE_OUTPUT_TOKENS", "4096", minimum=1)
RESERVE_STEP_TOKENS = env_int("RESERVE_STEP_TOKENS", "1024", minimum=1)

# Endpoints that spend AI calls (models, chat, /v1, read-only usage) also take API keys.
# Apps read this list through nexus.lib.auth, so none has to import accounts for it.
AI_AUTHENTICATION_CLASSES = [
    "accounts.authentication.ApiKeyAuthentication",
    "accounts.authentication.JWTAuthentication",
]

# --- REST framework and OpenAPI --------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["nexus.lib.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "nexus.lib.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "nexus.lib.errors.exception_handler",
    # Never 406: streaming clients ask for text/event-stream, which the SSE views send themselves.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "nexus.lib.negotiation.FallbackContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexus API",
    "DESCRIPTION": "Accounts, multi-provider AI chat, an OpenAI-compatible gateway and usage accounting.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Providers and models both have a `kind`, of different choices: each its own enum.
    "ENUM_NAME_OVERRIDES": {
        "ProviderKindEnum": "llm.models.ProviderKind",
        "ModelKindEnum": "llm.models.ModelKind",
    },
}

# --- Internationalization, static files ------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Uploaded files (chats.files) ------------------------------------------------------
# Kept on the filesystem under MEDIA_ROOT, or with FILE_STORAGE=s3 in S3-compatible object
# storage, which every server process shares. They are served only through the API, to
# their owner: there is no MEDIA_URL.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
FILE_STORAGE = env_choice("FILE_STORAGE", "filesystem", ("filesystem", "s3"))
if FILE_STORAGE == "s3":
    AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured(
            "FILE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME, the bucket to keep files in."
        )
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL", "")  # empty: AWS itself; else MinIO, R2, ...
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "")
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID", "")  # empty: boto3's own lookup (a role, ~/.aws)
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY", "")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL or None,
            "region_name": AWS_S3_REGION_NAME or None,
            "access_key": AWS_ACCESS_KEY_ID or None,
            "secret_key": AWS_SECRET_ACCESS_KEY or None,
            "default_acl": None,  # the bucket's own: private
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# --- HTTPS behind a proxy --------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", "false") else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", "false")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", "0", minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "false")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", "false")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Observability ---------------------------------------------------------------------
# /metrics (Prometheus text format) answers 404 until this is set, then wants it as a bearer token.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- Logging ---------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper()
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "nexus.lib.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "nexus.lib.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs every 4xx as a warning with the request path; ours is enough.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
    },
}
