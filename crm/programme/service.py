"""Programme rules: the defaults in docs/rules.md, overridable by an admin.

A fresh database needs no rows: every rule reads its default until changed.
"""
import re

from flask_babel import gettext as _
from sqlalchemy import select

from ..core import audit, refcache
from ..core.actor import Actor
from ..errors import Invalid
from ..extensions import db
from .models import Setting


def _whole(low, high, message):
    """Validator for a whole number (fen or a count) within [low, high]."""
    return lambda v: None if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high else message


def _choice(*options):
    return lambda v: None if v in options else f"Choose one of: {', '.join(options)}."


def _clock(v):
    """Validator for a "HH:MM" time of day."""
    return None if isinstance(v, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v) else "Use a time like 21:00."


def _flag(v):
    return None if isinstance(v, bool) else "Use true or false."


def _coupon_code(v):
    """Validator for a coupon type's code, or "" for none (that it names a type is checked in update)."""
    return None if isinstance(v, str) and re.fullmatch(r"[A-Z0-9_-]{0,32}", v) else "Give a coupon type's code."


def _stay_rates(v):
    """Validator for hotel stays' rates (crm/stays): {segment: points per earn unit, 0 to 1000}."""
    from ..core.segments import SEGMENT_KEYS
    if not isinstance(v, dict) or any(k not in SEGMENT_KEYS for k in v):
        return "Give a rate for known guest segments only."
    if any(not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000 for n in v.values()):
        return "A stay's rate is a whole number of points from 0 to 1000."
    return None


REFERRAL_KINDS = ("none", "points", "coupon")
REFERRAL_COUPON_RULES = ("referral_referrer_coupon", "referral_referee_coupon")


# key -> (default, validator returning an error message or None). Amounts are fen.
RULES = {
    "card_fee": (2000, _whole(0, 1_000_000, "The card fee is an amount between 0 and 10000.")),
    "replacement_fee": (2000, _whole(0, 1_000_000, "The replacement fee is an amount between 0 and 10000.")),
    # 1 point per full 10 yuan of eligible spend (then × the level's multiplier).
    "points_earn_unit": (1000, _whole(1, 10_000_000, "The spend per point is an amount above 0.")),
    "points_per_unit": (1, _whole(0, 1000, "Points per unit is a whole number from 0 to 1000.")),
    # What one point is worth when redeemed: 1 point = 1 yuan.
    "point_value": (100, _whole(1, 1_000_000, "A point's value is an amount above 0.")),
    # Each earning expires at the end of the Nth month after the month it was earned; 0 = never.
    "points_expiry_months": (12, _whole(0, 120, "Expiry is a whole number of months from 0 to 120.")),
    # Levels go up when spend over this many months reaches a level's threshold.
    "level_window_months": (12, _whole(1, 60, "The upgrade window is 1 to 60 months.")),
    # Stored value: how a payment is split between principal and bonus.
    "wallet_spend_mode": ("proportional", _choice("proportional", "principal_first")),
    # Wallet payments above this amount need the member's PIN (if they set one).
    "wallet_pin_threshold": (20000, _whole(0, 100_000_000, "The PIN threshold is an amount of 0 or more.")),
    # Whether the bonus part of a wallet payment earns points (excluded by default).
    "points_on_wallet_bonus": (False, _flag),
    # A member's checkout of at least this much (after coupons) earns one lucky draw; 0 = no draws.
    # Marketing messages wait out these hours (the member's store time zone); equal = none.
    "quiet_hours_start": ("21:00", _clock),
    "quiet_hours_end": ("08:00", _clock),
    "draw_min_spend": (10000, _whole(0, 100_000_000, "The draw threshold is an amount of 0 or more.")),
    # Referrals 老带新 (crm/members/referrals.py): when a referee's first bill of at least
    # referral_min_spend (after coupons) closes, both get the reward of this kind: points or a
    # coupon of a type, each side its own amount or type (0 / "" = nothing for that side);
    # a referrer is rewarded at most referral_yearly_cap times per calendar year (0 = no cap).
    "referral_reward": ("none", _choice(*REFERRAL_KINDS)),
    "referral_referrer_points": (0, _whole(0, 1_000_000, "Give a whole number of points from 0 to 1000000.")),
    "referral_referee_points": (0, _whole(0, 1_000_000, "Give a whole number of points from 0 to 1000000.")),
    "referral_referrer_coupon": ("", _coupon_code),
    "referral_referee_coupon": ("", _coupon_code),
    "referral_min_spend": (0, _whole(0, 100_000_000, "The qualifying bill is an amount of 0 or more.")),
    "referral_yearly_cap": (10, _whole(0, 100_000, "The yearly cap is a whole number from 0 to 100000.")),
    # Hotel stays (crm/stays): points per full points_earn_unit of a stay's room + F&B revenue, by
    # guest segment; a segment not named earns points_per_unit, as a bill does. Edited on its own
    # (/api/v1/stays/rates), not in the programme form.
    "stay_points_per_unit": ({"complimentary": 0, "house_use": 0, "long_stay": 0}, _stay_rates),
}


def _stored() -> dict:
    """Every changed rule, kept per worker until an admin changes one (core/refcache.py):
    a checkout consults the rules a dozen times."""
    return refcache.get("programme", "rules",
                        lambda: {row.key: row.value["v"] for row in db.session.scalars(select(Setting))})


def get(key: str):
    """The current value of a rule (its default if never changed)."""
    return _stored().get(key, RULES[key][0])


def _check_referral(changes: dict):
    """The referral reward's coupon types exist, and the kind chosen gives something to someone."""
    from ..coupons import service as coupons  # coupons read the programme rules: import late
    from ..errors import NotFound
    for key in REFERRAL_COUPON_RULES:
        if changes.get(key):
            try:
                coupons.get_definition(changes[key])
            except NotFound:
                raise Invalid(_("No coupon type has the code %(code)s.", code=changes[key]),
                              code="coupon_type_not_found", field=key) from None
    if not any(key.startswith("referral_") for key in changes):
        return
    after = {key: changes.get(key, get(key)) for key in RULES if key.startswith("referral_")}
    if after["referral_reward"] == "points" and not (after["referral_referrer_points"]
                                                     or after["referral_referee_points"]):
        raise Invalid(_("A points reward needs points for the referrer, the new member or both."),
                      code="invalid_rule", field="referral_referrer_points")
    if after["referral_reward"] == "coupon" and not any(after[key] for key in REFERRAL_COUPON_RULES):
        raise Invalid(_("A coupon reward needs a coupon type for the referrer, the new member or both."),
                      code="invalid_rule", field="referral_referrer_coupon")


def all_rules() -> dict:
    return {key: get(key) for key in RULES}


def update(actor: Actor, changes: dict) -> dict:
    """Change rules; every value is validated before any is written."""
    for key, value in changes.items():
        if key not in RULES:
            raise Invalid(_("Unknown rule %(key)s.", key=key), code="unknown_rule", field=key)
        if key in REFERRAL_COUPON_RULES and isinstance(value, str):
            value = changes[key] = value.strip().upper()
        error = RULES[key][1](value)
        if error:
            raise Invalid(error, code="invalid_rule", field=key)
    _check_referral(changes)
    for key, value in changes.items():
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value={"v": value}, updated_by=actor.staff_id))
        else:
            row.value = {"v": value}
            row.updated_by = actor.staff_id
    audit.record(actor, "programme.update", entity_type="programme", changes=changes)
    return all_rules()
