"""The app's secrets are checked before it serves anything.

SECRET_KEY signs the session cookie and CSRF tokens; CARD_SIGNING_KEY (and the old keys
still accepted, CARD_SIGNING_KEYS_OLD) sign card QR codes; PIN_PEPPER (and PIN_PEPPERS_OLD)
keys the hash of payment PINs. With a public or guessable key
anyone could forge both, so in production a missing, well-known or short key stops the
start-up with one line naming the setting (gunicorn prints it and exits non-zero).

Development (CRM_ENV=development, as `make run` sets; FLASK_DEBUG=1) and tests start
without SECRET_KEY: a random key is made once and kept in instance/secret_key (git-ignored),
so a demo never runs on a key published in this repository and logins survive a restart.
"""
import logging
import os
import secrets
from itertools import pairwise
from pathlib import Path

log = logging.getLogger(__name__)

MIN_LENGTH = 32
MIN_DISTINCT = 10
# Values seen in this project's history, framework docs and tutorials.
KNOWN_DEFAULTS = frozenset({
    "dev-only-not-secret", "dev", "development", "devkey", "dev-key", "secret", "secretkey", "secret-key",
    "secret_key", "mysecret", "my-secret", "my-secret-key", "your-secret-key", "your_secret_key",
    "yoursecretkey", "changeme", "change-me", "change_me", "change-this", "changethis", "please-change-me",
    "default", "password", "test", "test-secret", "testing", "insecure", "not-secret", "notsecret",
    "super-secret", "supersecret", "super-secret-key", "bench", "bench-card-signing-key", "…", "...",
})
# A key containing one of these is a phrase someone typed, not a random value.
PHRASE_WORDS = ("secret", "password", "passw0rd", "changeme", "change-me", "change-it", "change_me", "example",
                "default", "please", "dev-only")
RUN = 6  # "abcdef", "123456", "fedcba": keyboard order, not chance


def _patterned(value: str) -> bool:
    """A repeated block ("abcabc…", a default typed twice) or a long ascending/descending run."""
    if value in (value + value)[1:-1]:
        return True
    steps = [ord(b) - ord(a) for a, b in pairwise(value.lower())]
    run = 1
    for previous, step in pairwise([None, *steps]):
        run = run + 1 if step in (1, -1) and step == previous else 1
        if run >= RUN - 1:
            return True
    return False


GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class InsecureConfiguration(RuntimeError):
    """The app refuses to start with these settings (the message is one line for the operator)."""


def weakness(value: str) -> str | None:
    """Why this key must not be used in production, or None if it will do."""
    if not value:
        return "is not set"
    if value.strip().lower() in KNOWN_DEFAULTS:
        return "is a well-known default value"
    if len(value) < MIN_LENGTH:
        return f"is too short ({len(value)} characters; at least {MIN_LENGTH})"
    if len(set(value)) < MIN_DISTINCT:
        return "is not random (too few different characters)"
    lowered = value.lower()
    if any(word in lowered for word in PHRASE_WORDS) or any(known in lowered for known in KNOWN_DEFAULTS
                                                                if len(known) >= 8):
        return "is a phrase, not a random value"
    if _patterned(value):
        return "is not random (a repeated or sequential pattern)"
    return None


def development(app) -> bool:
    return bool(app.testing or app.debug or app.config.get("CRM_ENV") == "development")


def _refuse(name: str, why: str):
    raise InsecureConfiguration(
        f"{name} {why}: set {name} to a long random value (e.g. {GENERATE_HINT}); "
        "for a laptop demo use `make run` or CRM_ENV=development.")


def _old_keys(app, name) -> list[str]:
    old = app.config.get(name) or []
    if isinstance(old, str):
        old = old.split(",")
    return [k.strip() for k in old if k and k.strip()]


def check(app):
    """Refuse to start in production with weak secrets; in development make SECRET_KEY if missing."""
    for name in ("CARD_SIGNING_KEYS_OLD", "PIN_PEPPERS_OLD"):
        app.config[name] = _old_keys(app, name)
    if development(app):
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = _instance_key(Path(app.instance_path) / "secret_key")
        return
    why = weakness(app.config.get("SECRET_KEY") or "")
    if why:
        _refuse("SECRET_KEY", why)
    for name in ("CARD_SIGNING_KEY", "PIN_PEPPER"):
        key = app.config.get(name)
        if key and (why := weakness(key)):
            _refuse(name, why)
    for name in ("CARD_SIGNING_KEYS_OLD", "PIN_PEPPERS_OLD"):
        for old in app.config[name]:
            if why := weakness(old):
                _refuse(name, f"holds a key that {why}")


def _instance_key(path: Path) -> str:
    """The development key kept in the instance folder, made on first use (owner-only file)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(tmp, path)  # atomic and never overwrites: two workers starting at once agree on one key
        log.info("Development mode: made a random SECRET_KEY, kept in %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
