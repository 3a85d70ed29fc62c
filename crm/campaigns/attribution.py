"""What a campaign's sends did: the treated group against the holdout, over N days after a send.

The groups are the ones fan-out recorded (Delivery.arm): for each occurrence, the members who
could be reached on the channel, either treated (sent the message, whatever became of it
afterwards) or held out (fanout.holdout). A member is counted once per occurrence; over a
campaign's several occurrences each (member, occurrence) is one unit, its window starting
with that occurrence's send (the first delivery row written for it).

Per group: members; visitors (at least one closed bill in the window: voided bills do not
count, and their coupons are given back by the void); spend (bills after coupons, as
checkout.bill_facts counts them) and spend per member; and, for a campaign that gives a
coupon, the members who redeemed a coupon of its type in the window — the treated mostly the
campaign's own, the holdout only ones they got elsewhere, so the figure is measured the same
way for both. Incremental revenue is (spend per treated member − spend per held-out member) ×
treated members, with a 95 % interval from the normal approximation on the difference of
the two means (Welch's standard error, from each group's sample variance of per-member spend).
"""
from datetime import datetime, timedelta
from decimal import Decimal
from math import sqrt
from statistics import NormalDist, variance

from flask_babel import gettext as _
from sqlalchemy import and_, func, select

from ..checkout.models import Checkout
from ..core.timeutil import utcnow
from ..coupons.models import Coupon
from ..errors import NotFound
from ..extensions import db
from ..reports.figures import money, money_per, rate
from . import service
from .models import ARMS, Delivery

CONFIDENCE = Decimal("0.95")
DEFAULT_DAYS = 14


def occurrences(campaign_id: int) -> list[tuple[str, datetime]]:
    """(occurrence key, when its send began) of every occurrence with a treated or held-out member, oldest first."""
    rows = db.session.execute(
        select(Delivery.occurrence, func.min(Delivery.created_at).label("start"))
        .where(Delivery.campaign_id == campaign_id, Delivery.member_id.is_not(None), Delivery.arm.is_not(None))
        .group_by(Delivery.occurrence)).all()
    return sorted(((row.occurrence, row.start) for row in rows), key=lambda r: (r[1], r[0]))


def _of(campaign_id: int, key: str):
    return (Delivery.campaign_id == campaign_id, Delivery.occurrence == key, Delivery.arm.is_not(None))


def _spends(campaign_id: int, key: str, start: datetime, end: datetime) -> list:
    """(arm, spend in fen, bills) per member of the occurrence, over the window."""
    spend = func.coalesce(func.sum(Checkout.member_total - Checkout.coupon_discount), 0)
    return db.session.execute(
        select(Delivery.arm, spend, func.count(Checkout.id))
        .outerjoin(Checkout, and_(Checkout.member_id == Delivery.member_id, Checkout.status == "closed",
                                  Checkout.created_at >= start, Checkout.created_at < end))
        .where(*_of(campaign_id, key)).group_by(Delivery.id, Delivery.arm)).all()


def _coupon_types(campaign, key: str) -> set[int]:
    """The coupon types the occurrence gave (the campaign's type now if it gave none it could show)."""
    given = set(db.session.scalars(select(Coupon.definition_id).join(Delivery, Delivery.coupon_id == Coupon.id)
                                   .where(*_of(campaign.id, key)).distinct()))
    return given or ({campaign.coupon_type_id} if campaign.coupon_type_id else set())


def _redeemed(campaign_id: int, key: str, types: set[int], start: datetime, end: datetime) -> dict:
    """{arm: members who redeemed a coupon of these types in the window}."""
    used = select(Coupon.id).where(Coupon.member_id == Delivery.member_id, Coupon.definition_id.in_(types),
                                   Coupon.status == "redeemed", Coupon.redeemed_at >= start, Coupon.redeemed_at < end)
    return dict(db.session.execute(select(Delivery.arm, func.count()).where(*_of(campaign_id, key), used.exists())
                                   .group_by(Delivery.arm)).all())


def _group(spends: list[int], visitors: int, redeemed: int, with_coupon: bool) -> dict:
    n, total = len(spends), sum(spends)
    return {"members": n, "visitors": visitors, "visit_rate": rate(visitors, n), "spend": money(total),
            "spend_per_member": money_per(total, n),
            "coupon_redemptions": redeemed if with_coupon else None,
            "coupon_redemption_rate": rate(redeemed, n) if with_coupon else None}


def incremental(treated: list[int], holdout: list[int]) -> dict:
    """Difference per member, incremental revenue and its interval (in fen, Decimal), with a
    note when there is nothing to compare (`no_holdout`) or too few to estimate a spread."""
    out = {"difference": None, "incremental": None, "low": None, "high": None, "note": None}
    if not holdout:
        return {**out, "note": "no_holdout"}
    if not treated:
        return {**out, "note": "too_few"}
    n_t, n_h = len(treated), len(holdout)
    difference = Decimal(sum(treated)) / n_t - Decimal(sum(holdout)) / n_h
    out.update(difference=difference, incremental=difference * n_t)
    if n_t < 2 or n_h < 2:
        return {**out, "note": "too_few"}
    standard_error = sqrt(variance(treated) / n_t + variance(holdout) / n_h)
    margin = Decimal(NormalDist().inv_cdf(float(1 + CONFIDENCE) / 2) * standard_error)
    return {**out, "low": (difference - margin) * n_t, "high": (difference + margin) * n_t}


def report(campaign_id: int, occurrence: str | None = None, days: int = DEFAULT_DAYS) -> dict:
    """The treated group against the holdout for one occurrence, or every occurrence of the campaign."""
    campaign = service.get_campaign(campaign_id)
    found = occurrences(campaign.id)
    if occurrence is not None:
        found = [(key, start) for key, start in found if key == occurrence]
        if not found:
            raise NotFound(_("This campaign has no such send."), code="occurrence_not_found", field="occurrence")
    spends = {arm: [] for arm in ARMS}
    visitors, redeemed = dict.fromkeys(ARMS, 0), dict.fromkeys(ARMS, 0)
    with_coupon, listed, now = False, [], utcnow()
    for key, start in found:
        end = start + timedelta(days=days)
        counts = dict.fromkeys(ARMS, 0)
        for arm, spend, bills in _spends(campaign.id, key, start, end):
            spends[arm].append(int(spend))
            visitors[arm] += bills > 0
            counts[arm] += 1
        types = _coupon_types(campaign, key)
        if types:
            with_coupon = True
            for arm, n in _redeemed(campaign.id, key, types, start, end).items():
                redeemed[arm] += n
        listed.append({"occurrence": key, "sent_at": start, "window_ends": end, **counts})
    effect = incremental(spends["treated"], spends["holdout"])
    both = len(spends["treated"]) + len(spends["holdout"])

    def figure(fen):
        return None if fen is None else money(fen)
    return {
        "campaign_id": campaign.id, "occurrence": occurrence, "days": days,
        "holdout_percent": campaign.holdout_percent, "occurrences": listed,
        "window_complete": all(o["window_ends"] <= now for o in listed),
        **{arm: _group(spends[arm], visitors[arm], redeemed[arm], with_coupon) for arm in ARMS},
        "holdout_share": rate(len(spends["holdout"]), both),
        "difference_per_member": figure(effect["difference"]), "incremental_revenue": figure(effect["incremental"]),
        "confidence_interval": None if effect["low"] is None else {
            "low": money(effect["low"]), "high": money(effect["high"]), "level": f"{CONFIDENCE * 100:.0f}"},
        "note": effect["note"],
    }


FIGURES = ("treated.members", "treated.visitors", "treated.visit_rate", "treated.spend", "treated.spend_per_member",
           "treated.coupon_redemptions", "treated.coupon_redemption_rate", "holdout.members", "holdout.visitors",
           "holdout.visit_rate", "holdout.spend", "holdout.spend_per_member", "holdout.coupon_redemptions",
           "holdout.coupon_redemption_rate", "holdout_share", "difference_per_member", "incremental_revenue",
           "confidence_interval.low", "confidence_interval.high")


def figures(result: dict) -> dict:
    """The report as flat figures ("treated.members": 9000, ...), in order, for a file."""
    out = {"occurrence": result["occurrence"] or "", "days": result["days"]}
    for name in FIGURES:
        value = result
        for part in name.split("."):
            value = None if value is None else value.get(part)
        out[name] = value
    return out

