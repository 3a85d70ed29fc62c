"""Requests to the members' own pages per client address (SELF_SERVICE_LIMIT, limits' notation).

A link is a 192-bit secret, so guessing one is hopeless anyway; the limit keeps a scraper or a
stuck refresh loop from costing the database. Counted in RATELIMIT_STORAGE_URI (Redis shares it
between workers; memory:// counts per worker). A page refreshed every 30 seconds uses 2 a minute.
"""
import math
import time

from flask import current_app
from limits import parse_many

from ..core import ratelimits

SCOPE = "self-service"


def reset(app):
    """Forget every count (tests)."""
    ratelimits.reset(app, SCOPE)


def retry_after(address: str | None) -> int | None:
    """Count one request from this address; the seconds to wait if it is over the limit."""
    cfg = current_app.config
    setting = cfg.get("SELF_SERVICE_LIMIT")
    if not setting or not cfg.get("RATELIMIT_ENABLED", True):
        return None
    _storage, strategy = ratelimits.limiter(SCOPE)
    prefix = cfg.get("RATELIMIT_KEY_PREFIX") or "crm"
    for item in parse_many(setting):
        if not strategy.hit(item, prefix, SCOPE, address or "?"):
            reset_at = strategy.get_window_stats(item, prefix, SCOPE, address or "?").reset_time
            return max(1, math.ceil(reset_at - time.time()))
    return None
