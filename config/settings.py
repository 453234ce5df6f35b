"""AlertDesk settings: one module, driven by environment variables (see .env.example).

With no variables set the desk runs on embedded defaults (SQLite, the in-memory channel
layer, Celery tasks run in-process) so that `make run` works on a bare machine.
`ALERTDESK_ENV=production` turns on the production hardening and requires real secrets.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_prefixed, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

ENVIRONMENT = env_str("ALERTDESK_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("ALERTDESK_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DJANGO_DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG cannot be on in production")


def _secret(name: str, dev_file: str, size: int) -> str:
    """A secret from the environment. Required in production; in development a random one is
    made once into a git-ignored file, so no secret lives in code and restarts keep it."""
    value = env_str(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} is required in production")
    path = BASE_DIR / dev_file
    if not path.exists():
        path.write_text(secrets.token_urlsafe(size))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret("DJANGO_SECRET_KEY", ".dev-secret-key", 50)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "accounts.admin_config.AlertDeskAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "django_htmx",
    "accounts",
    "alerts",
    "desk",
    "audit",
]

MIDDLEWARE = [
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    # Deny by default: every view needs a login unless marked @login_not_required ...
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # ... and a passed OTP step unless marked @mfa_not_required.
    "accounts.middleware.MFARequiredMiddleware",
    "accounts.middleware.CurrentTenantMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that a lockout answers before the login view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "csp.context_processors.nonce",
                "accounts.context_processors.desk",
            ],
            # {% url %} reversing each URL once per process (config.links says why).
            "builtins": ["config.links"],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# A pool of connections per process (psycopg_pool, through Django) when DATABASE_POOL_MAX is set:
# config.asgi sets it, because under ASGI each request runs on a thread of its own and a persistent
# connection could not be reused; without a pool, each request would open (and PostgreSQL fork) a
# connection of its own. The pool hands connections back at the end of each request.
DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", 0)
if DATABASE_POOL_MAX and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX,
        # A request waits at most this long for a free connection, then fails (a 500), not hangs.
        "timeout": env_int("DATABASE_POOL_TIMEOUT_SECONDS", 10),
    }
# PostgreSQL plans each statement again unless it is prepared: on the queue page that was a tenth of
# the server time (0.6 ms for its rows alone). With server-side binding psycopg prepares a statement
# on a connection once it has run there DATABASE_PREPARE_THRESHOLD times (the pool and persistent
# connections keep them). A pooler in transaction mode (PgBouncer) cannot keep prepared statements:
# set DATABASE_SERVER_SIDE_BINDING=0 behind one.
if env_bool("DATABASE_SERVER_SIDE_BINDING", True) and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": env_int("DATABASE_PREPARE_THRESHOLD", 5)}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for each other instead of failing at once with "database is locked": a
    # transaction takes the write lock when it begins (IMMEDIATE), so two that read then write
    # cannot deadlock on upgrading their locks (SQLite answers that at once, whatever the timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # The queue-order index INCLUDEs columns so PostgreSQL counts from the index alone; SQLite builds
    # the same index without them, which is all the embedded default needs: no warning on each command.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # group_expiry: a connection's group memberships outlive it by at most this when its process dies
    # without a goodbye (a restart, a crash); the desk's connections renew theirs at every re-check
    # (desk.consumers.RECHECK_SECONDS, 300 s). Left at channels_redis's day, every restart left a
    # queue's group with dead channels that each signal still went to (and filled to capacity).
    CHANNEL_LAYERS = {
        "default": {
            # A bounded pool per event loop (config.channel_layer): connections do not creep up.
            "BACKEND": "config.channel_layer.BoundedRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "group_expiry": 900,
                "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 32),
            },
        }
    }
    # One connection pool per process (config.cache): under ASGI a pool per request leaked connections.
    CACHES = {"default": {"BACKEND": "config.cache.SharedPoolRedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: a real worker with Redis; in-process tasks on the embedded defaults ----------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis: a message taken by a worker that died without acknowledging it (kill -9, a lost machine)
# goes back to the queue after this long. Kombu's default; tasks are safe to run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600)}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {"task": "accounts.tasks.session_expired_clear_task", "schedule": 3600.0},
    # Alerts whose customer did not answer "Was this you?" in the tenant's window: its no_answer_action.
    "notification-no-answer": {
        "task": "alerts.notifications.answer_tasks.notifications_no_answer_task",
        "schedule": 60.0,
    },
    "audit-seal": {"task": "audit.tasks.audit_seal_task", "schedule": float(env_int("AUDIT_SEAL_SECONDS", 1))},
    "detection-relay": {"task": "alerts.tasks.events_unprocessed_relay_task", "schedule": 60.0},
    "notification-relay": {"task": "alerts.notifications.tasks.notifications_relay_task", "schedule": 60.0},
    "notification-fallback": {"task": "alerts.notifications.tasks.notifications_fallback_task", "schedule": 30.0},
    "delivery-drills": {"task": "alerts.notifications.tasks.delivery_drills_due_task", "schedule": 300.0},
    # Account actions whose hold period ended (a contact change told to the customer first): the
    # relay behind each action's own countdown task.
    "account-action-holds": {"task": "desk.tasks.account_actions_release_due_task", "schedule": 60.0},
    "audit-checkpoint": {
        "task": "audit.tasks.audit_checkpoint_task",
        "schedule": float(env_int("AUDIT_CHECKPOINT_SECONDS", 300)),
    },
}

# --- Audit trail ------------------------------------------------------------------------------
# With a real worker, beat seals the chain every AUDIT_SEAL_SECONDS; in-process (the embedded
# defaults) each commit that records an event seals at once.
AUDIT_SEAL_ON_COMMIT = env_bool("AUDIT_SEAL_ON_COMMIT", default=CELERY_TASK_ALWAYS_EAGER)


def _signing_keys(name: str, raw: str) -> list[tuple[str, str]]:
    """`raw` as "id:secret,id:secret", newest first: the newest key signs, and older keys stay
    listed (to verify what they signed) after a rotation."""
    keys: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        key_id, _, secret = item.partition(":")
        if not (1 <= len(key_id) <= 16 and key_id.replace("-", "").replace("_", "").isalnum()) or len(secret) < 16:
            raise ImproperlyConfigured(
                f"{name} must be 'id:secret' items (id of 1-16 letters, digits, - or _; a secret of "
                "16 characters at least), comma-separated, newest first"
            )
        if key_id in dict(keys):
            raise ImproperlyConfigured(f"{name} lists the key id {key_id!r} twice")
        keys.append((key_id, secret))
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key")
    return keys


def _seal_keys() -> list[tuple[str, str]]:
    """AUDIT_SEAL_KEYS: every seal is an HMAC with the newest key and names its key id."""
    raw = env_str("AUDIT_SEAL_KEYS")
    if not raw:
        if PRODUCTION:
            raise ImproperlyConfigured("AUDIT_SEAL_KEYS is required in production")
        path = BASE_DIR / ".dev-audit-seal-key"
        if not path.exists():
            path.write_text(f"dev{secrets.token_hex(3)}:{secrets.token_urlsafe(32)}")
            path.chmod(0o600)
        raw = path.read_text().strip()
    return _signing_keys("AUDIT_SEAL_KEYS", raw)


# Sign chain checkpoints and archive heads; keep them outside the database (a secret store, the
# environment). AUDIT_CHECKPOINT_KEYS ("id:secret,...", newest first) rotates: each checkpoint
# names its key. AUDIT_CHECKPOINT_KEY, the single key without an id, signs when no list is given,
# and verifies the checkpoints it signed once a list replaces it.
AUDIT_CHECKPOINT_KEYS = _signing_keys("AUDIT_CHECKPOINT_KEYS", raw) if (raw := env_str("AUDIT_CHECKPOINT_KEYS")) else []
AUDIT_CHECKPOINT_KEY = (
    env_str("AUDIT_CHECKPOINT_KEY", "")
    if AUDIT_CHECKPOINT_KEYS
    else _secret("AUDIT_CHECKPOINT_KEY", ".dev-audit-key", 32)
)
# Keys the hash chain's seals, kept outside the database like the checkpoint keys: whoever can
# write the tables still cannot recompute a seal.
AUDIT_SEAL_KEYS = _seal_keys()
AUDIT_ARCHIVE_DIR = Path(env_str("AUDIT_ARCHIVE_DIR", str(BASE_DIR / "audit-archive")))
AUDIT_PAGE_SIZE = 50
AUDIT_GLOBAL_RETENTION_DAYS = env_int("AUDIT_GLOBAL_RETENTION_DAYS", 2557)  # events without a tenant


# --- Ingestion and personal data -----------------------------------------------------------------
# Fernet keys for personal data and secrets at rest, newest first (comma-separated: rotation).
def _field_keys() -> list[str]:
    keys = env_list("FIELD_ENCRYPTION_KEYS", [])
    if keys:
        return keys
    if PRODUCTION:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is required in production")
    path = BASE_DIR / ".dev-field-key"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return [path.read_text().strip()]


FIELD_ENCRYPTION_KEYS = _field_keys()
INGEST_MAX_BODY_BYTES = 1024 * 1024
# A MaxMind-format city database (GeoLite2-City.mmdb or similar) for precise coordinates, if any.
GEOIP_CITY_DB = env_str("GEOIP_CITY_DB", "")
INGEST_MAX_BATCH = 1000
# Events still unprocessed this long after they were received had their detection task lost: the
# relay queues them again.
DETECTION_RELAY_AFTER = timedelta(minutes=env_int("DETECTION_RELAY_AFTER_MINUTES", 10))
# With a broker, ingestion queues a detection task only when none waits unstarted (the waiting one
# claims the new events: alerts.services.detection_enqueue). Eager tasks run at once: nothing waits.
DETECTION_COALESCE = not CELERY_TASK_ALWAYS_EAGER
INGEST_SIGNATURE_TOLERANCE_SECONDS = 300
INGEST_KEY_OVERLAP = timedelta(hours=env_int("INGEST_KEY_OVERLAP_HOURS", 24))

# --- Customer notifications (alerts/notifications) ---------------------------------------------
# Where customers' links point (the "Was this you?" page) and providers' status callbacks arrive.
NOTIFICATION_PUBLIC_URL = env_str("NOTIFICATION_PUBLIC_URL", "" if PRODUCTION else "http://127.0.0.1:8000")
if PRODUCTION and not NOTIFICATION_PUBLIC_URL:
    raise ImproperlyConfigured("NOTIFICATION_PUBLIC_URL is required in production")
# One backend per channel, like EMAIL_BACKEND: a dotted path, or {"BACKEND": path, "OPTIONS": {...}}.
# The development outbox (stores what would be sent; `manage.py outbox_show`) is the embedded default.
# Real ones: alerts.notifications.channels.{DjangoEmailBackend, TwilioSmsBackend, TwilioVoiceBackend,
# WebhookPushBackend}; see alerts/notifications/channels.py for their options.
_OUTBOX = "alerts.notifications.channels.OutboxBackend"
NOTIFICATION_BACKENDS = {
    "email": env_str("NOTIFICATION_EMAIL_BACKEND", _OUTBOX),
    "sms": env_str("NOTIFICATION_SMS_BACKEND", _OUTBOX),
    "push": env_str("NOTIFICATION_PUSH_BACKEND", _OUTBOX),
    "voice": env_str("NOTIFICATION_VOICE_BACKEND", _OUTBOX),
}
NOTIFICATION_EMAIL_FROM = env_str("NOTIFICATION_EMAIL_FROM", "security@alertdesk.invalid")
# The Django email backend DjangoEmailBackend hands mail to: SMTP (EMAIL_HOST...) or an anymail one.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# django-anymail, for email through a provider's API (EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend):
# ANYMAIL_<SETTING> environment variables fill its settings (e.g. ANYMAIL_POSTMARK_SERVER_TOKEN). With
# ANYMAIL_WEBHOOK_SECRET ("user:password", the basic auth the provider's webhook sends) the provider's
# delivery and bounce webhooks are taken at /notifications/email/<esp>/tracking/ and tell each email's
# delivery (alerts/notifications/receipts.py); without it those URLs answer 404.
ANYMAIL = env_prefixed("ANYMAIL_")
# Twilio (SMS and voice): the account's credentials, the sender, and the API's address (a stub in tests).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = env_str("TWILIO_FROM", "")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
# Rows queued this long whose task never ran are queued again by the relay (beat, every minute).
NOTIFICATION_RELAY_AFTER = timedelta(seconds=env_int("NOTIFICATION_RELAY_AFTER_SECONDS", 60))
# A row handed to a provider without an answer recorded this long is in doubt (the worker died mid-send).
NOTIFICATION_IN_DOUBT_AFTER = timedelta(seconds=env_int("NOTIFICATION_IN_DOUBT_AFTER_SECONDS", 300))
# The queue the send tasks go to. The default queue by default (one `make worker` does everything);
# in production give them their own queue and workers (`celery worker -Q notifications`), so that a
# backlog of detection never delays a customer's message (bench/notifications.py runs it so).
NOTIFICATION_QUEUE = env_str("NOTIFICATION_QUEUE", "celery")
CELERY_TASK_ROUTES = {"alerts.notifications.tasks.notification_send_task": {"queue": NOTIFICATION_QUEUE}}
# The desk's outbox page for BPO admins: only with the outbox backend, and only in development.
NOTIFICATION_OUTBOX_PAGE = env_bool("NOTIFICATION_OUTBOX_PAGE", default=not PRODUCTION)
# What a customer's "No, it wasn't me" asks of the tenant's systems is a tenant setting:
# desk.models.ActionSettings.customer_no_actions (manage.py tenant_webhook --on-customer-no ...).

# --- Authentication --------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out username+IP before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.StaffModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "desk:home"
LOGOUT_REDIRECT_URL = "accounts:login"

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "AlertDesk")
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
MFA_BACKUP_CODE_COUNT = 10
# How long a re-authentication (password and OTP again) covers sensitive actions.
REAUTH_MAX_AGE = timedelta(seconds=env_int("REAUTH_MAX_AGE_SECONDS", 300))

# Lockout keyed on username and IP together: a call-centre floor shares one NAT address, so an
# IP-only lock would lock out the whole floor. Failures cool off instead of locking forever.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "config.http.client_ip"
AXES_VERBOSE = False  # axes logs usernames; our own log lines carry no personal data
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_DISABLE_ACCESS_LOG = True

# Reverse proxies in front of the desk whose X-Forwarded-For we trust (0 = use the socket address).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
ANONYMOUS_USER_NAME = None  # no anonymous access anywhere

# --- Sessions and cookies --------------------------------------------------------------------
SESSION_ENGINE = "accounts.sessions"
SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("SESSION_IDLE_MINUTES", 30))
SESSION_ABSOLUTE_LIFETIME = timedelta(hours=env_int("SESSION_ABSOLUTE_HOURS", 12))
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_LIFETIME.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Secure cookies whenever the desk is served over HTTPS; `make run` serves plain HTTP on loopback.
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=PRODUCTION)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_NAME = "__Host-sessionid" if SECURE_COOKIES else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if SECURE_COOKIES else "csrftoken"

# --- Security headers ------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# A strict policy everywhere, development included, so that an inline script is caught at once.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsVerifiedStaff"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, depth and size limited; malformed input is a 4xx in the contracts' error shapes.
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AlertDesk API",
    "DESCRIPTION": (
        "Account-event ingestion for client systems (see contracts/events.md) and the staff API for alerts, "
        "queues and cases (see contracts/staff-api.md)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set that several fields share (an alert's and a case's status differ).
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": "alerts.models.AlertStatus",
        "AlertTypeEnum": "alerts.models.AlertType",
        "CaseStatusEnum": "desk.models.CaseStatus",
    },
}

# --- Internationalisation, static files ------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without DEBUG (the default, also in development) WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Logging: JSON in production, one line of text otherwise; a request id on every line -------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_JSON = env_bool("LOG_JSON", default=PRODUCTION)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.logging.RequestIdFilter"},
        "layer_losses": {"()": "config.logging.ChannelLayerLossFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # axes puts usernames and IPs in its messages: keep them out of the logs.
        "axes": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},
        # channels_redis logs the group messages it skipped for full channels at INFO: at WARNING here.
        "channels_redis.core": {"level": "INFO", "filters": ["layer_losses"]},
    },
}
