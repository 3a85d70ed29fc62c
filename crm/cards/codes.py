"""Card numbers (Luhn check digit) and the signed payloads a card's QR codes carry.

Printed card: `CRM1.<card_no>.<signature>`; the signature is the first 80 bits of
HMAC-SHA256(key, card_no) in base32, so a forged or mistyped code fails the check.
Codes are signed with CARD_SIGNING_KEY; those signed with a key listed in
CARD_SIGNING_KEYS_OLD still verify, so the key can be rotated with a grace period.
Phone (dynamic, like a payment code): `CRM2.<card id>.<step>.<signature>`, where step is
the 30-second interval it was drawn in and the signature covers card and step; it is
accepted for about a minute, so a screenshot soon stops working. It names the card by its
internal id, never its number, so a screenshot does not give away a number a cashier
could type.
Only upper-case letters, digits and dots: safe for keyboard-wedge scanners.
"""
import base64
import hashlib
import hmac
import re
import secrets

from flask import current_app

from ..core.timeutil import now_ts

PREFIX = "86"
LENGTH = 16
PAYLOAD_VERSION = "CRM1"
DYNAMIC_VERSION = "CRM2"
STEP_SECONDS = 30
STEPS_ACCEPTED = (-2, -1, 0, 1)
_STEP = re.compile(r"^[0-9]{1,12}$")  # drawn up to a minute ago (or a little ahead, for clock drift)


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isascii() and number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_no() -> str:
    body = PREFIX + "".join(secrets.choice("0123456789") for _ in range(LENGTH - len(PREFIX) - 1))
    return body + luhn_check_digit(body)


def looks_like_card_no(text: str) -> bool:
    return len(text) == LENGTH and text.startswith(PREFIX) and text.isascii() and text.isdigit()


def mistyped_card_no(text: str) -> bool:
    """True for what has the shape of a card number (spaces and dashes allowed) but a wrong
    Luhn check digit: a typo, so the desk can say "mistyped?" rather than "no such member"."""
    compact = (text or "").strip().replace(" ", "").replace("-", "")
    return looks_like_card_no(compact) and not luhn_valid(compact)


# A legacy system's card number (member import): digits only, as printed, without our
# check digit; at least 6 digits so a mobile's last 4 typed at the desk never names a card.
LEGACY_MIN, LEGACY_MAX = 6, 20
_LEGACY = re.compile(rf"^[0-9]{{{LEGACY_MIN},{LEGACY_MAX}}}$")


def legacy_card_no(text: str) -> str | None:
    """The form a legacy card number is stored and looked up in (spaces and dashes dropped),
    or None if the text cannot be one. Whether such a card exists is the database's to say."""
    compact = (text or "").strip().replace(" ", "").replace("-", "")
    return compact if compact.isascii() and _LEGACY.match(compact) else None


def is_our_card_no(card_no: str) -> bool:
    """A number we could have issued: our prefix and length with a right Luhn check digit."""
    return looks_like_card_no(card_no) and luhn_valid(card_no)


def _keys() -> list[bytes]:
    """The signing key first, then the old keys that still verify (CARD_SIGNING_KEYS_OLD)."""
    cfg = current_app.config
    explicit = cfg.get("CARD_SIGNING_KEY")
    # Unset: derived from SECRET_KEY, so a deployment that sets only SECRET_KEY still gets a distinct key.
    current = explicit.encode() if explicit else hmac.new(cfg["SECRET_KEY"].encode(), b"card-qr-v1",
                                                          hashlib.sha256).digest()
    return [current, *(k.encode() for k in cfg.get("CARD_SIGNING_KEYS_OLD") or ())]


def _signature(message: str, key: bytes | None = None) -> str:
    mac = hmac.new(key or _keys()[0], message.encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(mac).decode()


def _signed(message: str, sig: str) -> bool:
    """Signed by the current key or one of the old keys still accepted during a rotation."""
    return any(hmac.compare_digest(sig, _signature(message, key)) for key in _keys())


def qr_payload(card_no: str) -> str:
    return f"{PAYLOAD_VERSION}.{card_no}.{_signature(card_no)}"


def current_step(now: float | None = None) -> int:
    return int((now_ts() if now is None else now) // STEP_SECONDS)


def dynamic_payload(card_id: int, now: float | None = None) -> str:
    """The phone's code for this 30-second interval."""
    step = current_step(now)
    return f"{DYNAMIC_VERSION}.{card_id}.{step}.{_signature(f'{DYNAMIC_VERSION}:{card_id}:{step}')}"


def dynamic_card_id(code: str, now: float | None = None) -> int | None:
    """The card id a phone code stands for, or None if it is not one, forged or expired."""
    parts = (code or "").strip().upper().split(".")
    if len(parts) != 4 or parts[0] != DYNAMIC_VERSION:
        return None
    card_id, step, sig = parts[1], parts[2], parts[3]
    if not (_STEP.match(card_id) and _STEP.match(step)):
        return None
    if int(step) - current_step(now) not in STEPS_ACCEPTED:
        return None  # expired (or from the future): show the phone's fresh code
    return int(card_id) if _signed(f"{DYNAMIC_VERSION}:{card_id}:{step}", sig) else None


def card_no_from_code(code: str) -> str | None:
    """The card number a scanned or typed code stands for, or None if forged or mistyped.

    Accepts the printed card's QR payload or a bare card number typed by a cashier (its
    Luhn digit catches typos). Phone codes name a card id: see dynamic_card_id."""
    code = (code or "").strip().upper()
    parts = code.split(".")
    if len(parts) == 3 and parts[0] == PAYLOAD_VERSION:
        card_no, sig = parts[1], parts[2]
        if looks_like_card_no(card_no) and _signed(card_no, sig):
            return card_no
        return None
    compact = code.replace(" ", "").replace("-", "")
    if looks_like_card_no(compact) and luhn_valid(compact):
        return compact
    return None
