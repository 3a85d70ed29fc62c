"""How payment PINs are stored: a keyed hash, not a slow one.

Threat model. A PIN is six digits: 10⁶ values. Whoever reads the `wallet_pins` table
(a leaked backup, a read-only SQL injection) could try all of them against a salted slow
hash (scrypt, 130 ms of CPU) in about a day on one core, so a slow hash only delays an
offline attack while it makes every payment with a PIN cost 130 ms of a worker. The
hash here is HMAC-SHA256 over a per-PIN random salt and the PIN, keyed with a *pepper*
that never enters the database (PIN_PEPPER in the environment): the table alone gives
an attacker nothing to guess against. Online guessing through the till or the API is
what remains, and it stops after PIN_TRIES wrong tries (wallet/service.py locks the
wallet until a manager unlocks it). The PIN itself is never stored or logged, not even in
idempotency bookkeeping (core/idempotency.py drops it before hashing a request).

Stored form: `hmac-sha256$<pepper id>$<salt hex>$<mac hex>`; the pepper id is the first 8
hex digits of SHA-256(pepper), so a hash says which pepper made it. Rotation: set the new
PIN_PEPPER and move the old one to PIN_PEPPERS_OLD; a PIN made with an old pepper (or a
scrypt hash from before this scheme) still verifies and is rewritten with the current
pepper on its next successful use (`verify` says when). Once no row names the old pepper
(`pending_rehash`), drop it from the list.
"""
import hashlib
import hmac
import secrets

from flask import current_app
from werkzeug.security import check_password_hash

SCHEME = "hmac-sha256"
LEGACY_PREFIXES = ("scrypt:", "pbkdf2:")  # werkzeug's slow hashes, used before this scheme


def _pepper_id(pepper: bytes) -> str:
    return hashlib.sha256(pepper).hexdigest()[:8]


def peppers() -> list[bytes]:
    """The current pepper first, then the old ones that still verify (PIN_PEPPERS_OLD).
    Unset, the pepper is derived from SECRET_KEY, which then must not change (see README)."""
    cfg = current_app.config
    explicit = cfg.get("PIN_PEPPER")
    current = explicit.encode() if explicit else hmac.new(cfg["SECRET_KEY"].encode(), b"wallet-pin-v1",
                                                          hashlib.sha256).digest()
    return [current, *(k.encode() for k in cfg.get("PIN_PEPPERS_OLD") or ())]


def _mac(pepper: bytes, salt: bytes, pin: str) -> str:
    return hmac.new(pepper, salt + b"$" + pin.encode(), hashlib.sha256).hexdigest()


def hash_pin(pin: str) -> str:
    pepper, salt = peppers()[0], secrets.token_bytes(16)
    return f"{SCHEME}${_pepper_id(pepper)}${salt.hex()}${_mac(pepper, salt, pin)}"


class UnknownPepper(Exception):
    """The PIN was hashed with a pepper this server no longer has (a rotation dropped it too early)."""


def verify(stored: str, pin: str) -> tuple[bool, bool]:
    """(is it right, should it be rewritten with the current pepper)."""
    if stored.startswith(LEGACY_PREFIXES):
        ok = check_password_hash(stored, pin)
        return ok, ok
    scheme, pepper_id, salt_hex, mac = stored.split("$")
    if scheme != SCHEME:
        raise UnknownPepper(f"unknown PIN hash scheme {scheme!r}")
    known = peppers()
    for position, pepper in enumerate(known):
        if _pepper_id(pepper) == pepper_id:
            ok = hmac.compare_digest(_mac(pepper, bytes.fromhex(salt_hex), pin), mac)
            return ok, ok and position > 0
    raise UnknownPepper(f"PIN pepper {pepper_id} is neither PIN_PEPPER nor in PIN_PEPPERS_OLD")


def current_prefix() -> str:
    """What every hash made with the current pepper starts with (for counting the rest)."""
    return f"{SCHEME}${_pepper_id(peppers()[0])}$"
