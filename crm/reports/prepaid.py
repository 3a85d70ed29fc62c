"""The prepaid-card report (单用途商业预付卡): stored value sold, spent, refunded and outstanding per
quarter and per store, with the count of cards holding a balance — what a restaurant or hotel
selling stored value files with the commerce authorities.

Everything is read from the wallet ledger (wallet_entries), three aggregate queries a report:

* Principal (money the guest paid, refundable) is what the regulator's figures are about; the
  bonus the business added is reported beside it (given, and outstanding), never mixed in.
* A quarter is its calendar months in the chain's time zone (CRM_TIMEZONE), as the KPIs bound days.
* sold       = principal top-ups in the quarter at the store that took the money.
  spent      = principal paid out for bills at the store, less what voids gave back (a void's
               `reversal` is counted in the quarter and at the store where the void happened, so
               a quarter already filed never changes; a quarter with more voids than spending is
               negative).
  refunded   = principal paid back (a manager's refund, an erasure's payback or write-off).
  opening    = balances brought in from a legacy system (the member import), at the member's store.
  outstanding (principal and bonus) = Σ of the store's entries up to the quarter's end. A guest's
               balance is chain-wide (top up here, spend there), so a store's figure is what it took
               in less what was paid out there and may be negative; the chain's total is the
               liability itself. Merges move balances between members (`transfer`, no store): they
               net to zero in the chain and are left out of the per-store flows.
  cards      = members whose principal is above zero at the quarter's end, by the store they
               registered at (their balance is not a store's), and in the chain.
A store's outstanding moves by sold + opening − spent − refunded each quarter.
Quarters that have not begun are left out."""
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from ..core.timeutil import local_today
from ..errors import Invalid
from ..extensions import db
from ..members.models import Member
from ..stores import service as stores
from ..wallet.models import WalletAccount, WalletEntry
from .figures import FIRST_DAY, LAST_DAY, Period, money
from .kpis import bounds

FIGURES = ("sold", "bonus_given", "spent", "refunded", "opening", "outstanding", "bonus_outstanding", "cards")


def quarters(year: int) -> list[tuple[int, Period]]:
    """(number, period) of the year's quarters that have begun."""
    if not (FIRST_DAY.year <= year <= LAST_DAY.year):
        raise Invalid(_("Reports cover 2000 to 2100."), code="invalid_period", field="year")
    today = local_today()
    out = []
    for q in range(1, 5):
        start = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        if start <= today:
            out.append((q, Period(start, date.fromordinal(end.toordinal() - 1))))
    return out


def _sum_when(condition, value):
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _flows(spans, store_id):
    """{(store_id, account kind, entry kind): ([in each quarter], [up to each quarter's end])}."""
    e, at = WalletEntry, WalletEntry.created_at
    columns = [_sum_when((at >= s) & (at < t), e.amount) for s, t in spans] + \
              [_sum_when(at < t, e.amount) for _s, t in spans]
    stmt = (select(e.store_id, WalletAccount.kind, e.kind, *columns)
            .join(WalletAccount, WalletAccount.id == e.account_id)
            .where(at < spans[-1][1]).group_by(e.store_id, WalletAccount.kind, e.kind))
    if store_id is not None:
        stmt = stmt.where(e.store_id == store_id)
    n = len(spans)
    return {(s, ak, ek): ([int(v) for v in vals[:n]], [int(v) for v in vals[n:]])
            for s, ak, ek, *vals in db.session.execute(stmt)}


def _cards(spans, store_id):
    """{registering store id: [members with principal > 0 at each quarter's end]}."""
    at = WalletEntry.created_at
    held = (select(WalletAccount.member_id,
                   *[_sum_when(at < t, WalletEntry.amount).label(f"b{i}") for i, (_s, t) in enumerate(spans)])
            .join(WalletEntry, WalletEntry.account_id == WalletAccount.id)
            .where(WalletAccount.kind == "principal", at < spans[-1][1])
            .group_by(WalletAccount.member_id).subquery())
    stmt = (select(Member.store_id, *[func.coalesce(func.sum(case((held.c[f"b{i}"] > 0, 1), else_=0)), 0)
                                      for i in range(len(spans))])
            .join(held, held.c.member_id == Member.id).group_by(Member.store_id))
    if store_id is not None:
        stmt = stmt.where(Member.store_id == store_id)
    return {s: [int(v) for v in vals] for s, *vals in db.session.execute(stmt)}


def _figures(flows, cards, q):
    """One row's figures in quarter index q from its flows {(account kind, entry kind): (in, upto)}."""
    def moved(account, *kinds):
        return sum(flows[(account, k)][0][q] for k in kinds if (account, k) in flows)

    def owed(account):
        return sum(upto[q] for (a, _k), (_in, upto) in flows.items() if a == account)
    return {"sold": money(moved("principal", "topup")), "bonus_given": money(moved("bonus", "topup")),
            "spent": money(-moved("principal", "spend", "reversal")),
            "refunded": money(-moved("principal", "refund")), "opening": money(moved("principal", "opening")),
            "outstanding": money(owed("principal")), "bonus_outstanding": money(owed("bonus")), "cards": cards}


def prepaid_report(year: int, store_code: str | None = None) -> dict:
    """Each begun quarter of the year: a row per store (or the one asked for), and the chain's total."""
    store = stores.get_by_code(store_code) if store_code else None
    chosen = [store] if store else list(stores.list_stores())
    begun = quarters(year)
    out = {"year": year, "store_code": store.code if store else None, "quarters": []}
    if not begun:
        return out
    spans = [bounds(p) for _q, p in begun]
    flows = _flows(spans, store.id if store else None)
    cards = _cards(spans, store.id if store else None)
    per_store, chain = {}, {}
    for (store_id, account, kind), value in flows.items():
        per_store.setdefault(store_id, {})[(account, kind)] = value
        # The chain's row: every entry, with or without a store (a merge's transfers are in what is owed).
        chain[(account, kind)] = _add(chain.get((account, kind)), value)
    for i, (q, p) in enumerate(begun):
        rows = [{"store_code": s.code, "store": s.name,
                 **_figures(per_store.get(s.id, {}), cards.get(s.id, [0] * len(spans))[i], i)} for s in chosen]
        total = None if store else _figures(chain, sum(v[i] for v in cards.values()), i)
        out["quarters"].append({"quarter": q, "from": p.start.isoformat(), "to": p.end.isoformat(),
                                "stores": rows, "total": total})
    return out


def _add(a, b):
    if a is None:
        return b
    return [x + y for x, y in zip(a[0], b[0], strict=True)], [x + y for x, y in zip(a[1], b[1], strict=True)]


def report_rows(report: dict, quarter_name=lambda y, q: f"{y} Q{q}", total_name="Total") -> list[dict]:
    """The report as flat rows (page, CSV, Excel): quarter, store, then each figure."""
    rows = []
    for quarter in report["quarters"]:
        name = quarter_name(report["year"], quarter["quarter"])
        for r in quarter["stores"]:
            rows.append({"quarter": name, "store": r["store"], **{k: r[k] for k in FIGURES}})
        if quarter["total"] is not None:
            rows.append({"quarter": name, "store": total_name, **quarter["total"]})
    return rows


COLUMNS = ("quarter", "store", *FIGURES)


def report_table(report: dict, *names) -> tuple[tuple, list[list]]:
    """(header, rows) of the report for a file or the page: the header is there even when no
    quarter of the year has begun, so a download of such a year still names its columns."""
    return COLUMNS, [[row[k] for k in COLUMNS] for row in report_rows(report, *names)]
