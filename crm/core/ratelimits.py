"""One moving-window limiter per purpose and app, in the store RATELIMIT_STORAGE_URI names
(the `limits` library): Redis shares the counts between workers and hosts, memory:// keeps
them per worker. Member searches (members/search_limit.py) and the members' own pages
(selfservice/limit.py) count here; failed logins have their own (auth/ratelimit.py)."""
from flask import current_app
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


def limiter(purpose: str):
    """(storage, moving-window limiter) for `purpose` in this app, made on first use."""
    key = f"crm_limiter_{purpose}"
    ext = current_app.extensions
    if key not in ext:
        storage = storage_from_string(current_app.config["RATELIMIT_STORAGE_URI"])
        ext[key] = (storage, MovingWindowRateLimiter(storage))
    return ext[key]


def reset(app, purpose: str):
    """Forget every count of `purpose` (tests)."""
    if f"crm_limiter_{purpose}" in app.extensions:
        app.extensions[f"crm_limiter_{purpose}"][0].reset()
