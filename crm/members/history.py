"""A member's history on one timeline: bills, points entries, stored-value entries, coupons
and card events, newest first, filtered by kind and date and paged — so the front desk can
answer "where did my points go?" from one list.

Design: one SQL `UNION ALL` of narrow per-source selects, each giving the same four columns
(kind, event, at, ref_id), ordered and paged by the database (`ORDER BY at DESC, …
LIMIT/OFFSET`). Paging is therefore exact across sources: page 2 starts where page 1 ended,
whatever mix of sources the rows come from, and the total is one COUNT over the same union.
Merging per-source pages in Python instead would need each source's first page × n rows to
be fetched for page n (or keyset cursors for five sources); the union lets the database do
it, using each source's (member, created_at) index. The page's rows (at most `per_page`) are
then loaded as objects, one query per kind present on the page, for display.

Sources and their events:
- bill: `closed` at the bill's time, and `voided` at its void time (a void is its own event);
- points: every ledger entry (earn, redeem, expire, adjust, reversal);
- wallet: every ledger entry of the principal and bonus accounts (topup, spend, refund, reversal);
- coupon: `issued` at issue, `redeemed` when used on a bill;
- card: the audit log's card actions (issue, freeze, unfreeze, lost, replace, cancel).

Ties on the timestamp are broken by kind, event and id, so the order (and so every page) is
stable between requests.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Integer, String, cast, func, literal_column, select, union_all

from ..auth.models import Staff
from ..cards.models import Card
from ..checkout.models import Checkout
from ..core.audit import AuditEntry
from ..core.timeutil import zone
from ..coupons.models import Coupon
from ..extensions import db
from ..points.models import PointsAccount, PointsEntry
from ..stores.models import Store
from ..wallet.models import WalletAccount, WalletEntry

KINDS = ("bill", "points", "wallet", "coupon", "card")
PER_PAGE = 20


@dataclass
class Filters:
    kind: str | None = None  # one of KINDS, or None for all
    date_from: date | None = None  # inclusive, in the time zone `tz`
    date_to: date | None = None  # inclusive
    tz: str | None = None


@dataclass
class Event:
    kind: str
    event: str
    at: datetime
    obj: object  # the Checkout, PointsEntry, WalletEntry, Coupon or AuditEntry


def _row(kind: str, event, at, ref_id):
    """The four union columns; literals are inlined and cast so both databases agree on types."""
    event = literal_column(f"'{event}'") if isinstance(event, str) else event
    return (cast(literal_column(f"'{kind}'"), String(8)).label("kind"), cast(event, String(16)).label("event"),
            at.label("at"), cast(ref_id, Integer).label("ref_id"))


def _sources(member_id: int) -> dict:
    """kind -> the selects of that kind's events for one member."""
    points_account = select(PointsAccount.id).where(PointsAccount.member_id == member_id).scalar_subquery()
    wallet_accounts = select(WalletAccount.id).where(WalletAccount.member_id == member_id)
    card_ids = select(cast(Card.id, String(64))).where(Card.member_id == member_id)
    return {
        "bill": [
            select(*_row("bill", "closed", Checkout.created_at, Checkout.id)).where(Checkout.member_id == member_id),
            select(*_row("bill", "voided", Checkout.voided_at, Checkout.id)).where(
                Checkout.member_id == member_id, Checkout.voided_at.is_not(None)),
        ],
        "points": [select(*_row("points", PointsEntry.kind, PointsEntry.created_at, PointsEntry.id))
                   .where(PointsEntry.account_id == points_account)],
        "wallet": [select(*_row("wallet", WalletEntry.kind, WalletEntry.created_at, WalletEntry.id))
                   .where(WalletEntry.account_id.in_(wallet_accounts))],
        "coupon": [
            select(*_row("coupon", "issued", Coupon.issued_at, Coupon.id)).where(Coupon.member_id == member_id),
            select(*_row("coupon", "redeemed", Coupon.redeemed_at, Coupon.id)).where(
                Coupon.member_id == member_id, Coupon.redeemed_at.is_not(None)),
        ],
        "card": [select(*_row("card", func.substr(AuditEntry.action, 6), AuditEntry.created_at, AuditEntry.id))
                 .where(AuditEntry.entity_type == "cards", AuditEntry.entity_id.in_(card_ids),
                        AuditEntry.action.like("card.%"))],
    }


def _bounds(filters: Filters) -> tuple[datetime | None, datetime | None]:
    """The UTC instants [start, end) of the local date range."""
    tz = zone(filters.tz)
    start = datetime.combine(filters.date_from, time(), tz) if filters.date_from else None
    end = datetime.combine(filters.date_to + timedelta(days=1), time(), tz) if filters.date_to else None
    return start, end


def timeline(member_id: int, filters: Filters | None = None):
    """The union (a subquery) of the member's events that pass the filters."""
    filters = filters or Filters()
    selects = [s for kind, group in _sources(member_id).items()
               if filters.kind in (None, kind) for s in group]
    merged = union_all(*selects).subquery("history")
    start, end = _bounds(filters)
    stmt = select(merged)
    if start is not None:
        stmt = stmt.where(merged.c.at >= start)
    if end is not None:
        stmt = stmt.where(merged.c.at < end)
    return stmt.subquery("events")


def page(member_id: int, filters: Filters | None = None, page_no: int = 1,
         per_page: int = PER_PAGE) -> tuple[list[Event], int]:
    """One page of the member's history, newest first, and the number of events in all."""
    events = timeline(member_id, filters)
    rows = db.session.execute(
        select(events).order_by(events.c.at.desc(), events.c.kind, events.c.event, events.c.ref_id.desc())
        .limit(per_page).offset((page_no - 1) * per_page)).all()
    if len(rows) < per_page and (rows or page_no == 1):
        total = (page_no - 1) * per_page + len(rows)
    else:
        total = db.session.scalar(select(func.count()).select_from(events))
    objects = _load(rows)
    return [Event(r.kind, r.event, r.at, objects[r.kind][r.ref_id]) for r in rows], total


_MODELS = {"bill": Checkout, "points": PointsEntry, "wallet": WalletEntry, "coupon": Coupon, "card": AuditEntry}


def _load(rows) -> dict:
    """kind -> {id: object} for the rows of one page (one query per kind on the page)."""
    wanted: dict[str, set] = {}
    for r in rows:
        wanted.setdefault(r.kind, set()).add(r.ref_id)
    out = {kind: {} for kind in KINDS}
    for kind, ids in wanted.items():
        model = _MODELS[kind]
        out[kind] = {o.id: o for o in db.session.scalars(select(model).where(model.id.in_(ids)))}
    return out


def names(events: list[Event]) -> dict:
    """{"stores": {id: name}, "staff": {id: name}} for the events of a page."""
    store_ids, staff_ids = set(), set()
    for e in events:
        store_ids.add(getattr(e.obj, "store_id", None))
        staff_ids.add(getattr(e.obj, "staff_id", None))
        if e.kind == "bill" and e.event == "voided":
            staff_ids.add(e.obj.voided_by)
        if e.kind == "coupon":
            staff_ids.add(e.obj.issued_by)
    store_ids.discard(None)
    staff_ids.discard(None)
    stores = dict(db.session.execute(select(Store.id, Store.name).where(Store.id.in_(store_ids))).tuples().all())
    staff = {i: name or username for i, name, username in db.session.execute(
        select(Staff.id, Staff.name, Staff.username).where(Staff.id.in_(staff_ids)))}
    return {"stores": stores, "staff": staff}
