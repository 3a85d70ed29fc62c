"""What a member sees of their own account on the phone-card page: every figure read from the
same services the staff pages use, so the member and the front desk never see different numbers."""
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select

from ..cards import service as cards
from ..catalog.models import ItemLevelPrice
from ..checkout import service as checkout
from ..core.timeutil import local_today, utcnow, zone
from ..coupons import service as coupons
from ..extensions import db
from ..members import levels
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from ..wallet import service as wallet

RECENT_BILLS = 10


@dataclass
class Progress:
    """How far the member is from the next level, by spend and/or top-ups over the window."""
    level: object
    window_months: int
    spend: int | None = None
    spend_needed: int | None = None
    topup: int | None = None
    topup_needed: int | None = None

    @staticmethod
    def _share(have, needed):
        return None if needed is None else min(100, int(have * 100 // needed)) if needed else 100

    @property
    def spend_percent(self):
        return self._share(self.spend, self.level.upgrade_spend)

    @property
    def topup_percent(self):
        return self._share(self.topup, self.level.upgrade_topup)


@dataclass
class Account:
    member: object
    card: object | None
    tz: str
    today: date
    points_available: int
    next_expiry: tuple[int, datetime] | None  # (points, when)
    wallet: dict
    coupons: list
    bills: list
    level_prices: int  # dishes with a price of the member's own level
    progress: Progress | None
    rules: dict
    tiers: list = field(default_factory=list)


def _next_expiry(member_id: int, now: datetime) -> tuple[int, datetime] | None:
    """The points that expire next and when: the lots sharing the earliest expiry still ahead."""
    lots = [lot for lot in points.open_lots(member_id) if lot.expires_at is not None and lot.expires_at > now]
    if not lots:
        return None
    first = lots[0].expires_at
    return sum(lot.remaining for lot in lots if lot.expires_at == first), first


def _progress(member, now: datetime) -> Progress | None:
    above = levels.levels_above(member)  # highest first
    if not above:
        return None
    nxt = above[-1]
    months = programme.get("level_window_months")
    found = Progress(level=nxt, window_months=months)
    if nxt.upgrade_spend is not None:
        found.spend = checkout.rolling_spend(member.id, months, now=now)
        found.spend_needed = max(0, nxt.upgrade_spend - found.spend)
    if nxt.upgrade_topup is not None:
        found.topup = levels.rolling_topup(member.id, months, now=now)
        found.topup_needed = max(0, nxt.upgrade_topup - found.topup)
    return found


def _bills(member_id: int) -> list:
    return db.session.scalars(checkout.list_checkouts(member_id=member_id).limit(RECENT_BILLS)).all()


def summary(member) -> Account:
    now = utcnow()
    tz = stores.get_store(member.store_id).timezone
    today = local_today(tz)
    level_prices = db.session.scalar(select(func.count()).select_from(ItemLevelPrice)
                                     .where(ItemLevelPrice.level_id == member.level_id))
    return Account(
        member=member, card=cards.live_card(member.id), tz=tz, today=today,
        points_available=points.available(member.id, now), next_expiry=_next_expiry(member.id, now),
        wallet=wallet.balances(member.id), coupons=coupons.coupons_of(member.id, usable_on=today),
        bills=_bills(member.id), level_prices=level_prices, progress=_progress(member, now),
        rules=programme.all_rules(), tiers=[t for t in wallet.list_tiers() if _tier_running(t, today)])


def _tier_running(tier, today: date) -> bool:
    return (tier.active and (tier.valid_from is None or tier.valid_from <= today)
            and (tier.valid_to is None or tier.valid_to >= today))


def local(value: datetime, tz: str) -> datetime:
    return value.astimezone(zone(tz))
