"""The member search budget: MEMBER_SEARCH_LIMIT per staff user, the API, the staff pages
and the till's mobile look-up together.

Counted in the rate-limit store (RATELIMIT_STORAGE_URI, through the `limits` library), so every
worker shares one budget when that is Redis; with the default
memory:// each worker counts its own. What counts, and why:

* A signed card code (a printed card's QR, a phone code) never counts: it cannot be
  guessed, so it reveals nothing, and a cashier scanning cards all shift never meets the limit.
* Everything typed counts - a full mobile too. It is the one exact look-up that can be
  guessed: a masked 138****8000 leaves 10,000 candidates, so without a budget they could be
  tried in minutes (hence also a daily cap by default).
* The same search again (same words, same page) within the shortest window counts once: a
  bill priced and then closed by mobile is one look-up, and repeating a question learns nothing.

Over budget: 429 `rate_limited` with Retry-After (API), a message on the page (UI); the first
refusal in each window is audited.
"""
import hashlib
import hmac
import math
import time

from flask import after_this_request, current_app
from flask_babel import gettext as _
from limits import parse_many

from ..core import audit, ratelimits
from ..core.actor import Actor
from ..errors import DomainError

SCOPE = "member-search"


class SearchRateLimited(DomainError):
    status, code = 429, "rate_limited"


def _is_signed_code(q: str) -> bool:
    from ..cards import service as cards  # cards depend on members; import late
    compact = q.strip()
    return "." in compact and cards.card_no_from_code(compact) is not None


def _store():
    return ratelimits.limiter(SCOPE)


def reset(app):
    """Forget every count (tests)."""
    ratelimits.reset(app, SCOPE)


def _key(*parts: str) -> str:
    return "/".join([current_app.config.get("RATELIMIT_KEY_PREFIX") or "crm", SCOPE, *parts])


def _fingerprint(q: str, page: int, per_page: int) -> str:
    """Keyed, so the storage never holds a searched mobile."""
    message = f"{q.strip()}\x00{page}\x00{per_page}".encode()
    return hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).hexdigest()[:32]


def spend(actor: Actor, q: str | None, page: int = 1, per_page: int = 20, *, field: str | None = None):
    """Count this search against the user's budget; raise SearchRateLimited (naming `field`,
    the input the search came from) when it is spent."""
    cfg = current_app.config
    setting = cfg.get("MEMBER_SEARCH_LIMIT")
    q = q or ""
    if not setting or not cfg.get("RATELIMIT_ENABLED", True) or actor is None or _is_signed_code(q):
        return
    items = sorted(parse_many(setting), key=lambda item: item.get_expiry())
    storage, strategy = _store()
    who = str(actor.staff_id or actor.username)
    seen = _key("seen", who, _fingerprint(q, page, per_page))
    if storage.get(seen):
        return
    for item in items:
        if not strategy.hit(item, _key("count"), who):
            _refuse(actor, item, who, field)
    storage.incr(seen, items[0].get_expiry())


def _refuse(actor: Actor, item, who: str, field: str | None):
    storage, strategy = _store()
    # The storage keeps time with time.time() (limits), so the wait is measured on that clock.
    reset_at = strategy.get_window_stats(item, _key("count"), who).reset_time
    retry_after = str(max(1, math.ceil(reset_at - time.time())))

    @after_this_request
    def _retry_after(response):
        response.headers["Retry-After"] = retry_after
        return response

    first = storage.incr(_key("refused", who, str(item)), item.get_expiry()) == 1
    if first:  # one audit row per user and window, however often a script retries
        audit.record(actor, "member.search_rate_limited", entity_type="staff", entity_id=actor.staff_id,
                     limit=str(item))
    raise SearchRateLimited(_("Too many member searches; try again in %(seconds)s seconds.", seconds=retry_after),
                            field=field, keep_work=first, retry_after=int(retry_after), limit=str(item))
