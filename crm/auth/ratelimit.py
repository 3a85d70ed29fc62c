"""Failed logins, counted once for the API (POST /api/v1/auth/token) and the UI (/login).

Two moving windows: per username (LOGIN_FAILURE_LIMIT, 5 per 15 minutes) and per address
(LOGIN_ADDRESS_FAILURE_LIMIT, 30 per 15 minutes: higher, so one typist's mistakes on their
own account do not lock a colleague out of the same till PC). Once either is reached,
every attempt for that name or from that address, right or wrong, is refused with 429 until
enough failures have aged out; refusals are audited and do not count. A successful login
resets nothing.

The counts are shared by every worker and host: in the store RATELIMIT_STORAGE_URI names
(Redis, through the `limits` library), or, with the default per-process memory://, in the
login_failures table. Attempts already in flight when the limit is reached still finish.
"""
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, select

from ..core import audit
from ..core.actor import Actor
from ..core.timeutil import as_utc, utcnow
from ..extensions import db
from .models import LoginFailure


@dataclass(frozen=True)
class Refusal:
    limit: str  # "user" or "address"
    retry_after: int  # seconds


def normalise_username(username) -> str:
    return str(username or "").strip().lower()[:64]


def _rules(username: str, address: str) -> list[tuple[str, str, RateLimitItem]]:
    cfg = current_app.config
    return [("user", f"user:{normalise_username(username)}", parse(cfg["LOGIN_FAILURE_LIMIT"])),
            ("address", f"addr:{address or '?'}", parse(cfg["LOGIN_ADDRESS_FAILURE_LIMIT"]))]


class _DatabaseCounts:
    """Failures as rows; the Nth most recent one within the window says how long a lock lasts."""

    def wait(self, key: str, item: RateLimitItem) -> int | None:
        now = utcnow()
        window = timedelta(seconds=item.get_expiry())
        nth = db.session.scalar(select(LoginFailure.failed_at)
                                .where(LoginFailure.key == key, LoginFailure.failed_at > now - window)
                                .order_by(LoginFailure.failed_at.desc()).offset(item.amount - 1).limit(1))
        if nth is None:
            return None
        return max(1, math.ceil((as_utc(nth) + window - now).total_seconds()))

    def add(self, keys_items):
        now = utcnow()
        longest = max(item.get_expiry() for _key, item in keys_items)
        db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - timedelta(seconds=longest)))
        db.session.add_all(LoginFailure(key=key, failed_at=now) for key, _item in keys_items)


class _StorageCounts:
    """Failures in a shared `limits` storage (Redis), under RATELIMIT_KEY_PREFIX. On Redis the
    prefix is the storage's own key prefix, so resetting the rate limits kept under the default
    prefix (another limit's storage.reset()) never forgives failed logins."""

    def __init__(self, uri: str, prefix: str):
        redis_like = uri.split(":", 1)[0].startswith(("redis", "valkey"))
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri, **({"key_prefix": prefix}
                                                                           if redis_like else {})))
        self.scope = ("login-failures",) if redis_like else (prefix, "login-failures")

    def wait(self, key: str, item: RateLimitItem) -> int | None:
        if self.limiter.test(item, *self.scope, key):
            return None
        reset = self.limiter.get_window_stats(item, *self.scope, key).reset_time
        return max(1, math.ceil(reset - time.time()))  # the storage's windows run on wall-clock time

    def add(self, keys_items):
        for key, item in keys_items:
            self.limiter.hit(item, *self.scope, key)


def _counts():
    ext = current_app.extensions
    if "crm_login_failures" not in ext:
        uri = current_app.config["RATELIMIT_STORAGE_URI"]
        ext["crm_login_failures"] = (_DatabaseCounts() if uri.startswith("memory://")
                                     else _StorageCounts(uri, current_app.config["RATELIMIT_KEY_PREFIX"]))
    return ext["crm_login_failures"]


def refusal(username, address: str) -> Refusal | None:
    """Whether a login attempt must be refused (429) before the password is even checked;
    a refusal is audited (the caller commits)."""
    counts = _counts()
    for limit, key, item in _rules(username, address):
        wait = counts.wait(key, item)
        if wait is not None:
            actor = Actor(staff_id=None, username=normalise_username(username) or "?", role="anonymous",
                          address=address)
            audit.record(actor, "auth.rate_limited", entity_type="login", entity_id=actor.username,
                         limit=f"{limit}: {item}")
            return Refusal(limit, wait)
    return None


def record_failure(username, address: str):
    """Count a failed login against the name and the address (the caller commits)."""
    _counts().add([(key, item) for _limit, key, item in _rules(username, address)])
