"""Configuration read from the environment (and an optional `.env` file).

Every setting has a safe default for a newcomer's laptop; production sets
DATABASE_URL, SECRET_KEY and RATELIMIT_STORAGE_URI at least (see README).
"""
import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _int(name, default):
    return int(os.environ.get(name, default))


def _list(name):
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


class Config:
    # "development" lets the app start without SECRET_KEY (it then makes a random one and
    # keeps it in instance/secret_key); `make run` sets it. Anything else is production,
    # where a missing, well-known or short SECRET_KEY or card key stops the start-up
    # (crm/auth/keys.py). FLASK_DEBUG=1 and tests relax the check the same way.
    CRM_ENV = os.environ.get("CRM_ENV", "production").strip().lower()
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    # Card QR payloads (printed and phone) are signed with CARD_SIGNING_KEY (unset: a key
    # derived from SECRET_KEY). To rotate it, move the old key to CARD_SIGNING_KEYS_OLD
    # (comma-separated): new codes are signed with the new key, codes signed with an old
    # key still verify until it is removed from the list.
    CARD_SIGNING_KEY = os.environ.get("CARD_SIGNING_KEY") or None
    CARD_SIGNING_KEYS_OLD = _list("CARD_SIGNING_KEYS_OLD")
    # Payment PINs are kept as HMAC-SHA256 keyed with PIN_PEPPER, which never enters the
    # database (crm/wallet/pins.py); unset, a key derived from SECRET_KEY. Rotate like the
    # card key: the old one goes to PIN_PEPPERS_OLD until every PIN has been used once.
    PIN_PEPPER = os.environ.get("PIN_PEPPER") or None
    PIN_PEPPERS_OLD = _list("PIN_PEPPERS_OLD")
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'crm.sqlite3'}")
    )
    # Pre-ping checks a pooled connection before each checkout (a cheap round trip), so the
    # first request after a database restart gets a fresh connection instead of a 503 on a
    # dead one. On by default; DB_POOL_PRE_PING=0 turns it off.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": os.environ.get("DB_POOL_PRE_PING", "1") == "1",
                                 "pool_recycle": 1800}
    # Seconds to wait for a PostgreSQL connection before answering 503 database_unavailable.
    DB_CONNECT_TIMEOUT = _int("DB_CONNECT_TIMEOUT", 5)
    # PostgreSQL: longest wait for a row or table lock, and longest statement, in milliseconds
    # (0 = no limit); both answer 503 database_unavailable before gunicorn's 30 s timeout.
    # Migrations run without them (migrations/env.py).
    DB_LOCK_TIMEOUT_MS = _int("DB_LOCK_TIMEOUT_MS", 10_000)
    DB_STATEMENT_TIMEOUT_MS = _int("DB_STATEMENT_TIMEOUT_MS", 25_000)
    CRM_TIMEZONE = os.environ.get("CRM_TIMEZONE", "Asia/Shanghai")

    # Staff sessions (UI): idle and absolute timeouts, in minutes.
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 30)
    SESSION_ABSOLUTE_MINUTES = _int("SESSION_ABSOLUTE_MINUTES", 12 * 60)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    API_TOKEN_HOURS = _int("API_TOKEN_HOURS", 12)
    PASSWORD_HASH_METHOD = "scrypt"

    # Failed logins (API and UI together) allowed per username, and per address: the address
    # limit is higher, so one typist's mistakes do not lock colleagues at the same till PC.
    LOGIN_FAILURE_LIMIT = os.environ.get("LOGIN_FAILURE_LIMIT", "5 per 15 minutes")
    LOGIN_ADDRESS_FAILURE_LIMIT = os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "30 per 15 minutes")
    # Where failed logins are counted: a shared store such as redis://127.0.0.1:6379, or
    # memory:// (the default), which counts them in the database so every worker sees them.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "crm")
    # Member searches per staff user (API, staff pages and the till together; limits' notation,
    # ";" between limits; empty = off). Scanned card codes are free (crm/members/search_limit.py).
    MEMBER_SEARCH_LIMIT = os.environ.get("MEMBER_SEARCH_LIMIT", "60 per minute;1000 per day")
    # Requests to the members' own pages (/m/…) per client address; empty = no limit.
    SELF_SERVICE_LIMIT = os.environ.get("SELF_SERVICE_LIMIT", "120 per minute")
    # Number of reverse proxies in front of the app whose X-Forwarded-For to trust.
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = CRM_TIMEZONE
    LANGUAGES = ("zh_CN", "en")
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")

    IDEMPOTENCY_KEY_HOURS = _int("IDEMPOTENCY_KEY_HOURS", 48)

    API_TITLE = "Membership & Loyalty CRM"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    WTF_CSRF_TIME_LIMIT = None  # the session timeouts already bound a form's life
    MAX_CONTENT_LENGTH = 5 * 1024 * 1024  # bodies over 5 MB are refused with 413
    # CSV imports (checks, stays) alone may be larger: 32 MB holds about 500,000 checks. They run
    # as background jobs (crm/reports/import_jobs.py), a chunk of rows per transaction; a job
    # whose runner stopped is taken over once its lease lapses.
    IMPORT_MAX_BYTES = _int("IMPORT_MAX_BYTES", 32 * 1024 * 1024)
    IMPORT_CHUNK_ROWS = _int("IMPORT_CHUNK_ROWS", 2000)
    IMPORT_LEASE_SECONDS = _int("IMPORT_LEASE_SECONDS", 60)
    IMPORT_RUN_INLINE = False  # True: the upload request runs its job itself (tests)
    BULK_RUN_INLINE = False  # True: the request that creates (or reverses) a bulk job runs it itself (tests)

    # Campaign channels. Email goes over SMTP; SMS through an HTTP gateway that takes
    # POST {"to", "text", "sender"} with a Bearer token and answers 2xx when it accepts.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")  # empty: email deliveries fail "not configured"
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "0") == "1"  # STARTTLS
    MAIL_USE_SSL = os.environ.get("MAIL_USE_SSL", "0") == "1"
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_FROM = os.environ.get("MAIL_FROM", "crm@localhost")
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")  # empty: SMS deliveries fail "not configured"
    SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
    SMS_SENDER = os.environ.get("SMS_SENDER", "")
    # The gateway posts members' replies (TD, 退订…) to POST /api/v1/sms/inbound with this Bearer
    # token; empty: the endpoint accepts nothing.
    SMS_INBOUND_TOKEN = os.environ.get("SMS_INBOUND_TOKEN", "")
    # Members are told this many days ahead about points that will expire (the nightly points job).
    NOTIFY_POINTS_EXPIRING_DAYS = _int("NOTIFY_POINTS_EXPIRING_DAYS", 30)
    # PIPL retention: members with no bill, stay, top-up or phone-card link for this many years
    # (and no stored value) are anonymised by the nightly job; 0 (the default) is off.
    PIPL_RETENTION_YEARS = _int("PIPL_RETENTION_YEARS", 0)
    CHANNEL_TIMEOUT_SECONDS = _int("CHANNEL_TIMEOUT_SECONDS", 10)
    # Throttle per channel (limits' notation), retries and the scheduler's beat.
    EMAIL_RATE_LIMIT = os.environ.get("EMAIL_RATE_LIMIT", "10/second")
    SMS_RATE_LIMIT = os.environ.get("SMS_RATE_LIMIT", "20/second")
    DELIVERY_MAX_ATTEMPTS = _int("DELIVERY_MAX_ATTEMPTS", 5)
    DELIVERY_RETRY_SECONDS = _int("DELIVERY_RETRY_SECONDS", 60)  # doubled after each failure
    SCHEDULER_TICK_SECONDS = _int("SCHEDULER_TICK_SECONDS", 30)
    # A send missed while the scheduler was down is still made up to this many days late.
    SCHEDULER_CATCH_UP_DAYS = _int("SCHEDULER_CATCH_UP_DAYS", 2)
    FANOUT_BATCH = _int("FANOUT_BATCH", 2000)  # members per fan-out transaction
    # Scheduler leadership: a lease of this many seconds, renewed every third of it; a standby
    # takes over (and resumes an interrupted fan-out) within one lease of the leader's death.
    SCHEDULER_LEASE_SECONDS = _int("SCHEDULER_LEASE_SECONDS", 15)
    # The SMS gateway drops a repeated Idempotency-Key (channels.py); 0: an interrupted SMS is `unknown`.
    SMS_GATEWAY_DEDUPE = os.environ.get("SMS_GATEWAY_DEDUPE", "1") == "1"


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    WTF_CSRF_ENABLED = True
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashing keeps the suite quick; never in production
    IMPORT_RUN_INLINE = True  # deterministic imports; tests/test_imports_jobs.py also runs the real thread
    BULK_RUN_INLINE = True  # bulk jobs too (tests/test_bulk_jobs.py)
