"""Mobile numbers: validation, normal form and masking.

Mainland numbers are stored as their 11 digits (1[3-9]xxxxxxxxx); others in E.164
(`+85291234567`). Validation of foreign numbers is phonenumbers' (libphonenumber).
"""
import re

import phonenumbers
from flask import g, has_app_context
from flask_babel import gettext as _

from ..auth.roles import FULL_MOBILE_ROLES

MAINLAND = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-()]")


def normalise_mobile(raw: str) -> str:
    """Return the stored form of a mobile number or raise ValueError with a reason."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise ValueError(_("Enter a mobile number."))
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+86"):
        text = text[3:]
    if not text.startswith("+"):
        if MAINLAND.match(text):
            return text
        raise ValueError(_("A mainland mobile has 11 digits starting 13–19; "
                           "write other countries as +<country code><number>."))
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(_("Not a valid international number.")) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("Not a valid number for that country."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_mobile(mobile: str | None) -> str | None:
    """138****8000 / +852****4567: enough to recognise, not enough to call."""
    if not mobile:
        return mobile
    if mobile.startswith("+"):
        number = phonenumbers.parse(mobile, None)
        return f"+{number.country_code}****{mobile[-4:]}"
    return f"{mobile[:3]}****{mobile[-4:]}"


def last4(mobile: str) -> str:
    return mobile[-4:]


def sees_full_mobiles() -> bool:
    """Whether the current user's role calls guests (the policy in auth.roles); the others see
    masked numbers and may look a member up only by the full number or its last 4 digits."""
    actor = g.get("actor") if has_app_context() else None
    return actor is not None and actor.role in FULL_MOBILE_ROLES


def mobile_for_viewer(mobile: str | None) -> str | None:
    """Full number for roles that call guests; masked for everyone else."""
    return mobile if sees_full_mobiles() else mask_mobile(mobile)


def mask_phone(phone: str | None) -> str | None:
    """Any phone as free text (a company's switchboard, an extension): a mobile is masked as
    above; anything else keeps only its last 4 digits (****6688)."""
    if not phone:
        return phone
    try:
        return mask_mobile(normalise_mobile(phone))
    except ValueError:
        digits = re.sub(r"\D", "", phone)
        return "****" + (digits[-4:] if len(digits) > 4 else "")


def phone_for_viewer(phone: str | None) -> str | None:
    """A contact phone as the current user may see it: like a member's mobile."""
    return phone if not phone or sees_full_mobiles() else mask_phone(phone)
