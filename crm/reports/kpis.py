"""Member and restaurant KPIs (docs/rules.md "Reports"), per store or group-wide, for any period.

Bills are the checkouts closed through the API plus the checks imported from a POS. Each
figure is one aggregate query. Definitions:
  member_growth_rate   = new members ÷ members at the period's start
  card_issue_rate      = bills where the guest joined at that visit ÷ bills of guests who
                         were not members when the bill opened (non-member bills + joiners)
  member_check_share   = member bills ÷ all bills; member_revenue_share likewise by amount
  spend_per_head       = revenue ÷ covers, over bills that recorded covers (members, others)
  stored_value_growth  = top-up principal ÷ the same figure for the period just before − 1
  points_* and wallet_outstanding_* belong to the members registered at the store.
"""
from datetime import UTC, datetime, time

from sqlalchemy import case, func, select, union_all

from ..checkout import service as checkout
from ..core.timeutil import default_tz_name, zone
from ..extensions import db
from ..members import service as members
from ..points import service as points
from ..stores import service as stores
from ..wallet import service as wallet
from .figures import Period, growth, money, money_per, rate
from .models import Check


def bounds(p: Period, tz_name: str | None = None) -> tuple[datetime, datetime]:
    """The period's local days as UTC instants [start, end)."""
    tz = zone(tz_name or default_tz_name())
    return datetime.combine(p.start, time(), tz), datetime.combine(p.end_exclusive, time(), tz)


def facts():
    """Every bill: checkouts closed here and checks imported from elsewhere."""
    imported = select(Check.store_id, Check.closed_at.label("at"), Check.amount, Check.covers, Check.member_id,
                      Check.joined_at_visit)
    return union_all(checkout.bill_facts(), imported).subquery("bills")


def bill_figures(start, end, store_id=None) -> dict:
    b = facts()
    member = b.c.member_id.is_not(None)
    counted = b.c.covers > 0

    def total(value, when=None):
        return func.coalesce(func.sum(value if when is None else case((when, value), else_=0)), 0)
    stmt = select(func.count(), total(1, member), total(1, b.c.joined_at_visit), total(b.c.amount),
                  total(b.c.amount, member), total(b.c.covers), total(b.c.amount, counted),
                  total(b.c.covers, member), total(b.c.amount, counted & member)
                  ).where(b.c.at >= start, b.c.at < end)
    if store_id is not None:
        stmt = stmt.where(b.c.store_id == store_id)
    (checks, member_checks, joined, revenue, member_revenue, covers, counted_revenue, member_covers,
     member_counted_revenue) = (int(v) for v in db.session.execute(stmt).one())
    non_member_covers = covers - member_covers
    return {
        "checks": checks, "member_checks": member_checks,
        "card_issue_rate": rate(joined, checks - member_checks + joined),
        "member_check_share": rate(member_checks, checks), "member_revenue_share": rate(member_revenue, revenue),
        "revenue": money(revenue), "covers": covers, "spend_per_head": money_per(counted_revenue, covers),
        "spend_per_head_members": money_per(member_counted_revenue, member_covers),
        "spend_per_head_non_members": money_per(counted_revenue - member_counted_revenue, non_member_covers),
    }


def member_kpis(store_code: str | None, p: Period) -> dict:
    store = stores.get_by_code(store_code) if store_code else None
    store_id = store.id if store else None
    start, end = bounds(p, store.timezone if store else None)
    before_start, _ = bounds(p.before(), store.timezone if store else None)
    counts = members.report_counts(start, end, store_id)
    who = members.ids_of_store(store_id) if store_id is not None else None
    purse = wallet.report_figures(start, end, before_start, store_id=store_id, member_ids=who)
    return {
        "members_total": counts["members_total"], "new_members": counts["new_members"],
        "member_growth_rate": rate(counts["new_members"], counts["members_at_start"]),
        **bill_figures(start, end, store_id),
        "topup_principal": money(purse["topup_principal"]), "topup_bonus": money(purse["topup_bonus"]),
        "stored_value_growth": growth(purse["topup_principal"], purse["topup_principal_before"]),
        "wallet_outstanding_principal": money(purse["wallet_outstanding_principal"]),
        "wallet_outstanding_bonus": money(purse["wallet_outstanding_bonus"]),
        **points.report_figures(start, end, member_ids=who),
    }


BILL_COLUMNS = ("store", "closed_at", "amount", "covers", "member_id", "joined_at_visit")


def bill_rows(store_code: str | None, p: Period, yes_no=None):
    """Every bill of a period, oldest first, streamed from the database in chunks (for exports):
    the store, the time it closed in the store's own zone (to the second), the amount (Money),
    covers, the member's number and whether the guest joined at that visit. For people
    (`yes_no`: the words for true and false) the store is named and joined is a word; for
    machines it is the store's code and 1 or 0. The store is checked now, before a file
    starts; the rows are read while it is sent."""
    store = stores.get_by_code(store_code) if store_code else None
    start, end = bounds(p, store.timezone if store else None)
    b = facts()
    chain = stores.list_stores()
    names = {s.id: s.name if yes_no else s.code for s in chain}
    zones = {s.id: zone(s.timezone) for s in chain}
    stmt = select(b.c.store_id, b.c.at, b.c.amount, b.c.covers, b.c.member_id, b.c.joined_at_visit).where(
        b.c.at >= start, b.c.at < end).order_by(b.c.at)
    if store is not None:
        stmt = stmt.where(b.c.store_id == store.id)
    return _bill_lines(stmt, names, zones, yes_no or (1, 0))


def _bill_lines(stmt, names, zones, yes_no):
    for store_id, at, amount, covers, member_id, joined in db.session.execute(
            stmt.execution_options(yield_per=5000)):
        at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zones.get(store_id) or zone())
        yield (names.get(store_id, ""), at.replace(tzinfo=None, microsecond=0), money(amount), covers,
               member_id or "", yes_no[0] if joined else yes_no[1])
