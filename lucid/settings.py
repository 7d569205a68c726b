"""Settings for Lucid session storage: every value comes from the environment."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lucid.env_file import env_file_load

BASE_DIR = Path(__file__).resolve().parent.parent
# `.env` (or LUCID_ENV_FILE) fills in what the environment does not set, before anything is read.
LUCID_ENV_FILE = env_file_load()


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from error


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def env_str_or_file(name: str) -> str:
    """The value of `name`, or the content of the file that `<name>_FILE` names."""
    path = env_str(f"{name}_FILE")
    if not path:
        return env_str(name)
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE {path!r} cannot be read: {error}") from error


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """The key kept at `path`, made once at random (mode 0600) when there is none yet."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}.new")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(50))
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
# The key this project once published for development: anyone could sign tokens with it.
PUBLISHED_DEVELOPMENT_KEY = "lucid-insecure-development-key-change-me-in-production"
# Without DJANGO_SECRET_KEY(_FILE) (the embedded default), a key of this machine's own under var/.
SECRET_KEY = env_str_or_file("DJANGO_SECRET_KEY") or local_secret_key(
    BASE_DIR / "var" / "secret_key"
)
if SECRET_KEY == PUBLISHED_DEVELOPMENT_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is the published development key: set a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")

# --- Lucid --------------------------------------------------------------------------------------
LUCID_STORAGE_PATH = Path(env_str("LUCID_STORAGE_PATH", str(BASE_DIR / "var" / "sessions")))
LUCID_CHUNK_STORE_PATH = Path(env_str("LUCID_CHUNK_STORE_PATH", str(BASE_DIR / "var" / "chunks")))
LUCID_CHUNK_STORE_BACKEND = env_str(
    "LUCID_CHUNK_STORE_BACKEND", "chunks_app.storage.filesystem.FileSystemChunkStore"
)
LUCID_CHUNK_STORE_OPTIONS = {"root": str(LUCID_CHUNK_STORE_PATH)}
# 0: the watermark is a share of the chunk store's filesystem; otherwise of this many bytes.
LUCID_STORAGE_QUOTA_BYTES = env_int("LUCID_STORAGE_QUOTA_BYTES", 0)
# `filesystem`: chunks under LUCID_CHUNK_STORE_PATH, the spool under LUCID_STORAGE_PATH (every
# role that ingests or processes must share them). `s3`: both in an S3 bucket, under
# LUCID_S3_PREFIX + "chunks/" and "spool/"; roles then share nothing on disk.
LUCID_STORAGE_BACKEND = env_str("LUCID_STORAGE_BACKEND", "filesystem")
LUCID_SPOOL_STORE_BACKEND = ""
LUCID_SPOOL_STORE_OPTIONS: dict[str, object] = {}


def s3_store_options(area: str, *, quota_bytes: int) -> dict[str, object]:
    """An `S3ChunkStore`'s options for `area` ("chunks" or "spool") of the configured bucket.

    Without a region or credentials here, boto3 looks further (AWS_DEFAULT_REGION, its config
    files, an instance role).
    """
    return {
        "bucket": env_str("LUCID_S3_BUCKET"),
        "prefix": f"{env_str('LUCID_S3_PREFIX').strip('/')}/{area}".lstrip("/"),
        "endpoint_url": env_str("LUCID_S3_ENDPOINT_URL") or None,
        "region_name": env_str("LUCID_S3_REGION") or None,
        "access_key_id": env_str_or_file("AWS_ACCESS_KEY_ID") or None,
        "secret_access_key": env_str_or_file("AWS_SECRET_ACCESS_KEY") or None,
        "quota_bytes": quota_bytes,
    }


if LUCID_STORAGE_BACKEND == "s3":
    if not env_str("LUCID_S3_BUCKET"):
        raise ImproperlyConfigured("LUCID_STORAGE_BACKEND=s3 needs LUCID_S3_BUCKET.")
    if LUCID_STORAGE_QUOTA_BYTES <= 0:
        raise ImproperlyConfigured(
            "LUCID_STORAGE_BACKEND=s3 needs LUCID_STORAGE_QUOTA_BYTES: a bucket has no free "
            "space to measure; the high watermark is a share of the quota, and the health "
            "check's free space is what the stored chunks leave of it."
        )
    LUCID_CHUNK_STORE_BACKEND = LUCID_SPOOL_STORE_BACKEND = "chunks_app.storage.s3.S3ChunkStore"
    LUCID_CHUNK_STORE_OPTIONS = s3_store_options("chunks", quota_bytes=LUCID_STORAGE_QUOTA_BYTES)
    LUCID_SPOOL_STORE_OPTIONS = s3_store_options("spool", quota_bytes=0)
elif LUCID_STORAGE_BACKEND != "filesystem":
    raise ImproperlyConfigured(
        f"LUCID_STORAGE_BACKEND must be filesystem or s3, got {LUCID_STORAGE_BACKEND!r}."
    )
LUCID_COMPRESSION_ALGORITHM = env_str("LUCID_COMPRESSION_ALGORITHM", "zstd")
LUCID_COMPRESSION_LEVEL = env_int("LUCID_COMPRESSION_LEVEL", 6)
LUCID_CHUNK_SIZE_MB = env_int("LUCID_CHUNK_SIZE_MB", 10)
LUCID_MAX_CHUNK_SIZE_MB = env_int("LUCID_MAX_CHUNK_SIZE_MB", 64)
LUCID_MIN_CHUNK_SIZE = 64 * 1024
LUCID_RETENTION_DAYS = env_int("LUCID_RETENTION_DAYS", 30)
LUCID_MAX_SESSIONS = env_int("LUCID_MAX_SESSIONS", 1000)
LUCID_CLEANUP_INTERVAL_HOURS = env_int("LUCID_CLEANUP_INTERVAL_HOURS", 24)
LUCID_DISK_HIGH_WATERMARK = env_int("LUCID_DISK_HIGH_WATERMARK", 90)
LUCID_STALE_SESSION_HOURS = env_int("LUCID_STALE_SESSION_HOURS", 24)
LUCID_ORPHAN_GRACE_MINUTES = env_int("LUCID_ORPHAN_GRACE_MINUTES", 60)
LUCID_BACKUP_PATH = Path(env_str("LUCID_BACKUP_PATH", str(BASE_DIR / "var" / "backups")))
LUCID_BACKUP_KEEP = env_int("LUCID_BACKUP_KEEP", 7)
LUCID_BACKUP_INTERVAL_HOURS = env_int("LUCID_BACKUP_INTERVAL_HOURS", 24)
LUCID_METADATA_MAX_BYTES = 64 * 1024
LUCID_TASK_MAX_RETRIES = env_int("LUCID_TASK_MAX_RETRIES", 3)
LUCID_TASK_RETRY_DELAY_SECONDS = env_int("LUCID_TASK_RETRY_DELAY_SECONDS", 5)
LUCID_WATCHDOG_STALE_SECONDS = env_int("LUCID_WATCHDOG_STALE_SECONDS", 300)
LUCID_WATCHDOG_INTERVAL_SECONDS = env_int("LUCID_WATCHDOG_INTERVAL_SECONDS", 60)
LUCID_STORAGE_USAGE_CACHE_SECONDS = env_int("LUCID_STORAGE_USAGE_CACHE_SECONDS", 60)
LUCID_STATISTICS_CACHE_SECONDS = env_int("LUCID_STATISTICS_CACHE_SECONDS", 10)
LUCID_SESSION_ACCESS_CACHE_SECONDS = env_int("LUCID_SESSION_ACCESS_CACHE_SECONDS", 60)
# Longest life of a cached caller (user row and roles, API key → user), dropped on change.
LUCID_IDENTITY_CACHE_SECONDS = env_int("LUCID_IDENTITY_CACHE_SECONDS", 60)
# How long the playback token in a playlist's URIs lets a player read the recording.
LUCID_PLAYBACK_TOKEN_SECONDS = env_int("LUCID_PLAYBACK_TOKEN_SECONDS", 3600)
LUCID_HEALTH_MIN_FREE_MB = env_int("LUCID_HEALTH_MIN_FREE_MB", 512)
LUCID_PAGE_SIZE = env_int("LUCID_PAGE_SIZE", 50)
LUCID_MAX_PAGE_SIZE = env_int("LUCID_MAX_PAGE_SIZE", 1000)
MONGO_URL = env_str("MONGO_URL")
PORT = env_int("PORT", 8080)
# Encryption at rest (core/encryption.py): keys as `<id>:<base64 of 32 bytes>`, one per line of
# the file or comma-separated inline; the active one seals new data. None: nothing is encrypted.
LUCID_ENCRYPTION_KEYS_FILE = env_str("LUCID_ENCRYPTION_KEYS_FILE")
LUCID_ENCRYPTION_KEYS = env_str("LUCID_ENCRYPTION_KEYS")
LUCID_ENCRYPTION_ACTIVE_KEY = env_str("LUCID_ENCRYPTION_ACTIVE_KEY")

LUCID_STORAGE_PATH.mkdir(parents=True, exist_ok=True)

# --- Django -------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "lucid.apps.LucidAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_celery_beat",
    "core",
    "sessions_app",
    "chunks_app",
    "pipeline_app",
    "storage_app",
    "lucid",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.logging.RequestLogMiddleware",
    "core.http.bodies.RequestBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.audit.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Which of the service's roles this process plays (see `manage.py serve`); the recorder role
# serves only the routes recorders use.
LUCID_ROLE = env_str("LUCID_ROLE", "api")
ROOT_URLCONF = "lucid.urls_recorder" if LUCID_ROLE == "recorder" else "lucid.urls"
WSGI_APPLICATION = "lucid.wsgi.application"
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

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    # DATABASE_PASSWORD(_FILE) replaces the URL's password: any characters, no escaping, and the
    # URL carries no secret.
    if _database_password := env_str_or_file("DATABASE_PASSWORD"):
        DATABASES["default"]["PASSWORD"] = _database_password
    # One test database per test run, so that runs side by side don't drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            # SQLite whose writers queue for their turn (core/backends/sqlite3).
            "ENGINE": "core.backends.sqlite3",
            "NAME": LUCID_STORAGE_PATH / "lucid.sqlite3",
            # A thread keeps its connection between requests, as on PostgreSQL: no PRAGMAs to
            # run again per request.
            "CONN_MAX_AGE": 60,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # A file, not memory, so that threads and worker processes in tests share it.
            "TEST": {"NAME": str(LUCID_STORAGE_PATH / f"test-lucid-{os.getpid()}.sqlite3")},
        }
    }

# MONGO_URL (mongodb://host:port/name, a replica set) puts all metadata in MongoDB instead,
# through django-mongodb-backend: the contrib apps get ObjectId keys and migrations of their own.
MONGODB_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
MONGODB_APP_CONFIGS = {
    "lucid.apps.LucidAdminConfig": "lucid.mongodb_apps.AdminConfig",
    "django.contrib.auth": "lucid.mongodb_apps.AuthConfig",
    "django.contrib.contenttypes": "lucid.mongodb_apps.ContentTypesConfig",
    "django_celery_beat": "lucid.mongodb_apps.BeatConfig",
}
MONGODB_MIGRATION_MODULES = {
    label: f"lucid.mongodb_migrations.{label}"
    for label in ("admin", "auth", "contenttypes", "django_celery_beat")
}
if MONGO_URL:
    _mongodb_name = MONGO_URL.partition("//")[2].partition("/")[2].partition("?")[0] or "lucid"
    DATABASES = {
        "default": {
            "ENGINE": "django_mongodb_backend",
            "HOST": MONGO_URL,
            "NAME": _mongodb_name,
            "TEST": {"NAME": f"test_{_mongodb_name}_{os.getpid()}"},
        }
    }
    INSTALLED_APPS = [MONGODB_APP_CONFIGS.get(app, app) for app in INSTALLED_APPS]
    MIGRATION_MODULES = MONGODB_MIGRATION_MODULES

# django-prometheus' wrappers of the same engines count queries and errors.
for _database in DATABASES.values():
    _database["ENGINE"] = _database["ENGINE"].replace(
        "django.db.backends.", "django_prometheus.db.backends.", 1
    )

DEFAULT_AUTO_FIELD = MONGODB_AUTO_FIELD if MONGO_URL else "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Redis down slows us, never fails us: errors read as misses, and give up fast.
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
            },
        }
    }
else:
    # Files that every process shares: gunicorn's workers count login attempts together (a
    # per-process cache would let each worker allow the whole rate), and what one process
    # drops (a deleted session's entry) is gone for all.
    # Room for the owner entries of every session a busy machine records: at Django's default
    # of 300 entries, each miss past 300 sessions would drop a third of the cache at random.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(LUCID_STORAGE_PATH / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Chunk bodies are streamed by our own views; this bounds only form and JSON bodies.
DATA_UPLOAD_MAX_MEMORY_SIZE = LUCID_METADATA_MAX_BYTES * 4

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.AccessTokenAuthentication",
        "core.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "core.api.permissions.RolePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["core.api.filters.FilterBackend"],
    # JSON in, as the contract says; chunk bodies are read raw by their views, not parsed.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.KeysetPagination",
    "PAGE_SIZE": LUCID_PAGE_SIZE,
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_RATES": {"auth": env_str("LUCID_AUTH_RATE", "10/min")},
    # Reverse proxies in front of the service, each appending to X-Forwarded-For; with 0 the
    # header is ignored (a client could write anything there), with N the address the Nth
    # proxy from us saw is the client's: throttles and audit entries use it.
    "NUM_PROXIES": env_int("LUCID_NUM_PROXIES", 0),
}
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto on every request (deploy/tls/): the
# request is HTTPS when it says so. Off by default: a client could write the header itself.
if env_bool("LUCID_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SPECTACULAR_SETTINGS = {
    "TITLE": "Lucid session storage API",
    "DESCRIPTION": "Stores RDP session recordings: sessions, chunks, pipelines and downloads.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Relative: the host that serves the schema serves the API.
    "SERVERS": [{"url": "/", "description": "The host that serves this schema."}],
    # Swagger UI and ReDoc from our own static files: recording networks are often offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge fetched from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.paths_without_trailing_slash",
        "core.api.schema.json_bodies_refuse_other_media_types",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "sessions_app.choices.SessionStatus",
        "CompressionAlgorithmEnum": "core.choices.CompressionAlgorithm",
    },
}

# JWT lifetimes: an access token is sent with each request, the refresh token only to renew it.
LUCID_ACCESS_TOKEN_MINUTES = env_int("LUCID_ACCESS_TOKEN_MINUTES", 5)
LUCID_REFRESH_TOKEN_HOURS = env_int("LUCID_REFRESH_TOKEN_HOURS", 24)
if LUCID_ACCESS_TOKEN_MINUTES < 1 or LUCID_REFRESH_TOKEN_HOURS < 1:
    raise ImproperlyConfigured(
        "LUCID_ACCESS_TOKEN_MINUTES and LUCID_REFRESH_TOKEN_HOURS must be at least 1."
    )
SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=LUCID_ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=LUCID_REFRESH_TOKEN_HOURS),
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"
# An upload of up to this size is compressed and stored in its own request while its session's
# pipeline runs, with no round trip through the spool and a worker: any upload where tasks run
# in-process anyway; with a broker, small ones, which cost less to compress than the hop to a
# worker. 0: every upload goes through the spool.
LUCID_STORE_ON_RECEIPT_MAX_KB = env_int(
    "LUCID_STORE_ON_RECEIPT_MAX_KB",
    LUCID_MAX_CHUNK_SIZE_MB * 1024 if CELERY_TASK_ALWAYS_EAGER else 1024,
)
# Eager retries work only without propagation; failures are logged by the task tracer.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Pool processes of a worker role; unset: one per CPU of the machine, which a container's CPU
# and memory limits do not change (docker-compose.yml sets it to the CPUs it gives a role).
CELERY_WORKER_CONCURRENCY = env_int("LUCID_WORKER_CONCURRENCY", 0) or None
CELERY_TASK_SERIALIZER = "json"
# A worker keeps its database connection from task to task; Celery otherwise closes it around
# every task, and each chunk would open a new PostgreSQL connection. It is checked before each
# task as a request's is (lucid/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Chunk work on `processing` (the processor role), maintenance on `storage` (the storage role).
CELERY_TASK_DEFAULT_QUEUE = "processing"
CELERY_TASK_ROUTES = {"sessions_app.tasks.*": {"queue": "storage"}}  # storage_app.tasks' names
LUCID_TASK_QUEUES = ("processing", "storage")

LUCID_LOG_FORMAT = env_str("LUCID_LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LUCID_LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LUCID_LOG_LEVEL", "INFO")},
}
