"""The cashier's day-end (日结): what a store took on one local day, per cashier and in total.

The day is the store's local calendar day (its time zone, Asia/Shanghai by default), as UTC
instants [00:00, next 00:00) — reports.kpis.bounds.

Rules
-----
* Closed: every bill closed that day at the store (`created_at` in the day), whatever became of
  it later — the gross the till rang up. Bills, covers, sales (member_total), coupons, points
  and each tender method are summed from them.
* Voided: every bill voided that day at the store (`voided_at` in the day), whenever it was
  closed — a void counts on the day it happened, as the prepaid report counts it, so a day
  already checked only changes when something happens on it. A void is listed with who closed
  the bill and when, who voided it and why, and its amounts; it counts against the cashier
  who closed the bill (their takings are what it gives back).
* Net = closed − voided, figure by figure. Net per tender is what the day leaves in the
  drawer (and the card terminal, the WeChat and Alipay accounts) for bills.
* Points and coupons are not tenders: they are the bills' points_value and coupon_discount,
  shown beside the tenders as what the rest of the bill was paid with. A bill's tenders add up
  to due + wallet_paid (checkout.service.settle_tenders), so per bill
  sales = coupons + points + Σ tenders, and so for every total here.
* Tender methods are read from the bills, not from a list: a method added later (sign-for-bill)
  shows by its name (checkout/labels.py) or, failing that, its code.
* Card fees, top-ups (principal and bonus, by payment method) and wallet refunds (the principal
  paid back and the bonus forfeited, with who and why) are counted where and when they were
  taken, by the staff member who took them. Top-ups cannot be voided; a refund has no
  payment method recorded. A PIPL erasure that wrote a wallet off (nothing paid back; audit
  `wallet.forfeit`) is listed with the refunds, marked written off, and left out of their totals.
* Money taken by method (`takings`) = net tenders that are money (not stored value, not
  sign-for-bill) + top-up principal + card fees, with WeChat written `wechat` by cards and
  wallet folded into `wechat_pay`. Refunds are listed apart: how they were paid back is not
  recorded.

Every figure group is one aggregate query (bills, tenders, voids, their tenders, card fees,
top-ups, refunds, staff names): never a query per bill.

Checking the day (`check_day`) records who looked at it, when, a note and the totals they saw;
it locks nothing. Checking again adds a row. The page compares the latest check with the
figures now and lists every total that moved (a late void)."""
import hashlib
import json
from datetime import date, datetime, timezone

from flask_babel import gettext as _
from sqlalchemy import BigInteger, String, func, literal, select, union_all

from ..auth.models import Staff
from ..auth.roles import ADMIN, MANAGER
from ..cards.models import PAYMENT_LABELS, CardFee
from ..checkout.labels import TENDER_NAMES
from ..checkout.models import Checkout, CheckoutTender
from ..core import audit, reasons
from ..core.actor import Actor
from ..core.audit import AuditEntry
from ..core.money import format_fen
from ..core.timeutil import as_utc, local_today, utcnow, zone
from ..errors import Conflict, Forbidden, Invalid
from ..extensions import db
from ..reports.figures import FIRST_DAY, LAST_DAY, Period, money
from ..reports.kpis import bounds
from ..stores import service as stores
from ..stores.models import Store
from ..wallet.models import WalletAccount, WalletEntry, WalletTopup
from .models import DayEndCheck

# The order tenders are shown in; any other method follows, by its code.
ORDER = ("cash", "bank_card", "wechat_pay", "alipay", "stored_value", "company_account", "other")
NOT_MONEY = ("stored_value", "company_account")  # paid from the wallet, or owed by a company: nothing taken
_ALIASES = {"wechat": "wechat_pay"}  # cards and wallet say `wechat`, bills `wechat_pay`
BILL_FIGURES = ("bills", "covers", "sales", "coupon_discount", "points_value", "paid")
MONEY_FIGURES = ("sales", "coupon_discount", "points_value", "paid")


def method_label(method: str) -> str:
    """A tender's or payment method's name in the page's language; an unknown one by its code."""
    method = _ALIASES.get(method, method)
    name = TENDER_NAMES.get(method) or PAYMENT_LABELS.get(method)
    return str(name) if name is not None else method


def _sorted_methods(methods) -> list[str]:
    return sorted(set(methods), key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def check_date(day: date) -> date:
    if not (FIRST_DAY <= day <= LAST_DAY):
        raise Invalid(_("Reports cover 2000 to 2100."), code="invalid_date", field="date")
    return day


# Figures ---------------------------------------------------------------------------------

def _bills():
    return {"bills": 0, "covers": 0, "sales": 0, "coupon_discount": 0, "points_value": 0, "paid": 0, "tenders": {}}


def _section():
    return {"closed": _bills(), "voided": _bills(), "card_fees": {"count": 0, "amount": 0, "by_method": {}},
            "top_ups": {"count": 0, "principal": 0, "bonus": 0, "by_method": {}},
            "refunds": {"count": 0, "principal": 0, "bonus": 0}}


def _add_bill(into, bills, covers, sales, coupons, points):
    into["bills"] += bills
    into["covers"] += covers
    into["sales"] += sales
    into["coupon_discount"] += coupons
    into["points_value"] += points


def _add_tender(into, method, amount):
    into["tenders"][method] = into["tenders"].get(method, 0) + amount
    into["paid"] += amount


def _in_day(column, start, end):
    return (column >= start) & (column < end)


def figures(store_code: str, day: date) -> dict:
    """The day-end of a store's local day, in fen (see the module's rules); `shown` formats it."""
    store = stores.get_by_code(store_code)
    day = check_date(day)
    start, end = bounds(Period(day, day), store.timezone)
    sections: dict[int | None, dict] = {}

    def of(staff_id):
        return sections.setdefault(staff_id, _section())

    # Bills and their tenders are read by one statement each for the closed and the voided: on
    # PostgreSQL every statement sees what was committed when it began, so a bill closed (or
    # voided) between two statements would count in the tenders and not in the sales.
    closed = _in_day(Checkout.created_at, start, end) & (Checkout.store_id == store.id)
    zero = literal(0, BigInteger)
    for row in db.session.execute(union_all(
            select(literal("bills").label("part"), Checkout.staff_id, literal(None, String(16)).label("method"),
                   func.count(Checkout.id), func.coalesce(func.sum(Checkout.covers), 0),
                   func.sum(Checkout.member_total), func.sum(Checkout.coupon_discount),
                   func.sum(Checkout.points_value), zero).where(closed).group_by(Checkout.staff_id),
            select(literal("tender"), Checkout.staff_id, CheckoutTender.method, zero, zero, zero, zero, zero,
                   func.sum(CheckoutTender.amount))
            .join(CheckoutTender, CheckoutTender.checkout_id == Checkout.id).where(closed)
            .group_by(Checkout.staff_id, CheckoutTender.method))):
        part, staff_id, method, n, covers, sales, coupons, points, amount = row
        if part == "bills":
            _add_bill(of(staff_id)["closed"], int(n), int(covers), int(sales), int(coupons), int(points))
        else:
            _add_tender(of(staff_id)["closed"], method, int(amount))

    voided = (_in_day(Checkout.voided_at, start, end) & (Checkout.store_id == store.id)
              & (Checkout.status == "voided"))
    voids, bill = [], None
    for row in db.session.execute(
            select(Checkout.id, Checkout.created_at, Checkout.staff_id, Checkout.voided_at, Checkout.voided_by,
                   Checkout.void_reason, Checkout.member_id, Checkout.covers, Checkout.member_total,
                   Checkout.coupon_discount, Checkout.points_value, CheckoutTender.method, CheckoutTender.amount)
            .outerjoin(CheckoutTender, CheckoutTender.checkout_id == Checkout.id).where(voided)
            .order_by(Checkout.voided_at, Checkout.id, CheckoutTender.id)):
        if bill is None or bill["checkout_id"] != row.id:
            into = of(row.staff_id)["voided"]
            _add_bill(into, 1, row.covers or 0, row.member_total, row.coupon_discount, row.points_value)
            closed_at = as_utc(row.created_at)
            bill = {"checkout_id": row.id, "closed_at": closed_at, "closed_by": row.staff_id,
                    "closed_on": closed_at.astimezone(zone(store.timezone)).date(),
                    "voided_at": as_utc(row.voided_at), "voided_by": row.voided_by,
                    "reason": row.void_reason or "",
                    "member_id": row.member_id, "covers": row.covers or 0, "sales": row.member_total,
                    "coupon_discount": row.coupon_discount, "points_value": row.points_value,
                    "paid": 0, "tenders": {}}
            voids.append(bill)
        if row.method is not None:
            _add_tender(into, row.method, row.amount)
            _add_tender(bill, row.method, row.amount)

    for staff_id, method, n, amount in db.session.execute(
            select(CardFee.staff_id, CardFee.payment_method, func.count(CardFee.id), func.sum(CardFee.amount))
            .where(CardFee.store_id == store.id, _in_day(CardFee.created_at, start, end))
            .group_by(CardFee.staff_id, CardFee.payment_method)):
        fees = of(staff_id)["card_fees"]
        fees["count"] += n
        fees["amount"] += int(amount)
        fees["by_method"][method] = fees["by_method"].get(method, 0) + int(amount)

    for staff_id, method, n, amount, bonus in db.session.execute(
            select(WalletTopup.staff_id, WalletTopup.payment_method, func.count(WalletTopup.id),
                   func.sum(WalletTopup.amount), func.sum(WalletTopup.bonus))
            .where(WalletTopup.store_id == store.id, _in_day(WalletTopup.created_at, start, end))
            .group_by(WalletTopup.staff_id, WalletTopup.payment_method)):
        top = of(staff_id)["top_ups"]
        top["count"] += n
        top["principal"] += int(amount)
        top["bonus"] += int(bonus)
        was = top["by_method"].get(method, {"count": 0, "principal": 0, "bonus": 0})
        top["by_method"][method] = {"count": was["count"] + n, "principal": was["principal"] + int(amount),
                                    "bonus": was["bonus"] + int(bonus)}

    # A PIPL erasure whose member gave the money up writes `refund` entries too (wallet.forfeit):
    # nothing was paid back, so it is listed as written off and left out of the refunds' totals.
    # It is the member's last refund line written before its audit row (same transaction), not
    # every line of the member: a refund paid back earlier that day stays a refund.
    refunds = []
    for entry in db.session.execute(
            select(WalletEntry.created_at, WalletEntry.staff_id, WalletEntry.reason, WalletAccount.member_id,
                   WalletAccount.kind, WalletEntry.amount)
            .join(WalletAccount, WalletAccount.id == WalletEntry.account_id)
            .where(WalletEntry.kind == "refund", WalletEntry.store_id == store.id,
                   _in_day(WalletEntry.created_at, start, end)).order_by(WalletEntry.created_at, WalletEntry.id)):
        # A refund writes a principal and a bonus entry together: one line per refund.
        last = refunds[-1] if refunds else None
        if not (last and (last["member_id"], last["staff_id"], last["reason"]) == (
                entry.member_id, entry.staff_id, entry.reason) and not last[entry.kind]):
            last = {"at": as_utc(entry.created_at), "staff_id": entry.staff_id, "member_id": entry.member_id,
                    "reason": entry.reason, "principal": 0, "bonus": 0, "written_off": False}
            refunds.append(last)
        last[entry.kind] += -entry.amount
    # Read after the entries: an erasure commits its entries and its audit row together, so every
    # write-off among the entries read is seen here (a newer one, whose entries were not read,
    # matches no line: a line is the member's, as much as the audit says, and not later than it).
    forfeits = [(int(i), as_utc(t), (details or {}).get("forfeited_principal"), (details or {}).get("forfeited_bonus"))
                for i, t, details in db.session.execute(
                    select(AuditEntry.entity_id, AuditEntry.created_at, AuditEntry.details).where(
                        AuditEntry.action == "wallet.forfeit", AuditEntry.store_id == store.id,
                        _in_day(AuditEntry.created_at, start, end))) if str(i).isdigit()]
    for member_id, when, principal, bonus in forfeits:
        lines = [r for r in refunds if r["member_id"] == member_id and r["at"] <= when and not r["written_off"]
                 and (format_fen(r["principal"]), format_fen(r["bonus"])) == (principal, bonus)]
        if lines:
            lines[-1]["written_off"] = True
    for r in refunds:
        if not r["written_off"]:
            totals_of = of(r["staff_id"])["refunds"]
            totals_of["count"] += 1
            totals_of["principal"] += r["principal"]
            totals_of["bonus"] += r["bonus"]

    total = _section()
    for section in sections.values():
        _merge(total, section)
    total = _with_net(total)
    ids = set(sections) | {v["voided_by"] for v in voids} | {v["closed_by"] for v in voids}
    names = _staff(ids - {None})
    cashiers = [{"staff": names.get(sid), **_with_net(s)}
                for sid, s in sorted(sections.items(), key=lambda kv: (kv[0] is None, _name(names.get(kv[0]))))]
    return {"store": store, "date": day, "from": start, "to": end, "total": total, "cashiers": cashiers,
            "voids": [{**v, "closed_by": names.get(v["closed_by"]), "voided_by": names.get(v["voided_by"])}
                      for v in voids],
            "refunds": [{**r, "staff": names.get(r.pop("staff_id"))} for r in refunds],
            "takings": _takings(total)}


def _name(staff):
    return (staff or {}).get("name") or (staff or {}).get("username") or ""


def _staff(ids) -> dict:
    if not ids:
        return {}
    return {i: {"id": i, "username": u, "name": n or u}
            for i, u, n in db.session.execute(select(Staff.id, Staff.username, Staff.name).where(Staff.id.in_(ids)))}


def _merge(into, section):
    for part in ("closed", "voided"):
        _add_bill(into[part], *(section[part][k] for k in ("bills", "covers", "sales", "coupon_discount",
                                                            "points_value")))
        for method, amount in section[part]["tenders"].items():
            _add_tender(into[part], method, amount)
    fees = into["card_fees"]
    fees["count"] += section["card_fees"]["count"]
    fees["amount"] += section["card_fees"]["amount"]
    for method, amount in section["card_fees"]["by_method"].items():
        fees["by_method"][method] = fees["by_method"].get(method, 0) + amount
    top = into["top_ups"]
    for k in ("count", "principal", "bonus"):
        top[k] += section["top_ups"][k]
        into["refunds"][k] += section["refunds"][k]
    for method, v in section["top_ups"]["by_method"].items():
        was = top["by_method"].get(method, {"count": 0, "principal": 0, "bonus": 0})
        top["by_method"][method] = {k: was[k] + v[k] for k in was}


def _with_net(section) -> dict:
    closed, voided = section["closed"], section["voided"]
    net = {k: closed[k] - voided[k] for k in BILL_FIGURES}
    net["tenders"] = {m: closed["tenders"].get(m, 0) - voided["tenders"].get(m, 0)
                      for m in _sorted_methods([*closed["tenders"], *voided["tenders"]])}
    return {**section, "net": net}


def _takings(total) -> dict:
    out = {}
    for method, amount in total["net"]["tenders"].items():
        if method not in NOT_MONEY:
            out[method] = out.get(method, 0) + amount
    for method, v in total["top_ups"]["by_method"].items():
        m = _ALIASES.get(method, method)
        out[m] = out.get(m, 0) + v["principal"]
    for method, amount in total["card_fees"]["by_method"].items():
        m = _ALIASES.get(method, method)
        out[m] = out.get(m, 0) + amount
    return {m: out[m] for m in _sorted_methods(out)}


def methods_of(day_end) -> list[str]:
    """Every tender method of the day (closed or voided), in the order the page shows them."""
    return list(day_end["total"]["net"]["tenders"])


# Totals a check keeps, and what moved since -----------------------------------------------

def totals(day_end) -> dict:
    """The store's totals as a flat {figure: fen (or count)}, as a check keeps them."""
    t = day_end["total"]
    out = {f"net.{k}": t["net"][k] for k in BILL_FIGURES}
    out.update({f"net.tender.{m}": v for m, v in t["net"]["tenders"].items()})
    out.update({"voided.bills": t["voided"]["bills"], "card_fees": t["card_fees"]["amount"],
                "top_ups.principal": t["top_ups"]["principal"], "top_ups.bonus": t["top_ups"]["bonus"],
                "refunds.principal": t["refunds"]["principal"], "refunds.bonus": t["refunds"]["bonus"]})
    out.update({f"takings.{m}": v for m, v in day_end["takings"].items()})
    return out


COUNTS = {"net.bills", "net.covers", "voided.bills"}


def fingerprint(kept: dict) -> str:
    """A short digest of the totals a check keeps: the page (and an API client) sends back the one
    it showed, so a check records exactly the figures the checker saw."""
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def changes(then: dict, now: dict) -> list[dict]:
    """Every total that differs between a check and now: {figure, then, now, difference} in fen."""
    out = []
    for key in sorted(set(then) | set(now)):
        a, b = int(then.get(key, 0)), int(now.get(key, 0))
        if a != b:
            out.append({"figure": key, "then": a, "now": b, "difference": b - a})
    return out


def checks(store_id: int, day: date) -> list[DayEndCheck]:
    """Who checked the day, newest first."""
    return list(db.session.scalars(select(DayEndCheck).where(DayEndCheck.store_id == store_id, DayEndCheck.day == day)
                                   .order_by(DayEndCheck.checked_at.desc(), DayEndCheck.id.desc())))


def check_day(actor: Actor, store_code: str, day: date, note: str = "", seen: str | None = None) -> DayEndCheck:
    """Record that `actor` checked the store's day now, with the totals as they are; locks nothing.
    A day not yet begun is 422 `day_not_begun`. `seen` is the fingerprint of the figures the
    checker was shown: if the figures moved since (a void while the page was open), nothing is
    recorded (409 `figures_changed`), so a check never vouches for figures nobody saw."""
    store = stores.get_by_code(store_code)
    check_date(day)
    if day > local_today(store.timezone):
        raise Invalid(_("This day has not begun yet."), code="day_not_begun", field="date")
    note = (note or "").strip()
    if len(note) > reasons.MAX_LENGTH:
        raise Invalid(_("Keep the note to %(max)d characters.", max=reasons.MAX_LENGTH), code="note_too_long",
                      field="note", max=reasons.MAX_LENGTH)
    now = totals(figures(store_code, day))
    if seen is not None and seen != fingerprint(now):
        raise Conflict(_("The figures changed while you had the page open: look at them again below, then "
                         "record your check."), code="figures_changed", fingerprint=fingerprint(now))
    row = DayEndCheck(store_id=store.id, day=day, checked_by=actor.staff_id, checked_at=utcnow(), note=note,
                      totals=now)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "day_end.check", entity=row, store_id=store.id, day=day.isoformat(), note=note,
                 net_paid=format_fen(now["net.paid"]))
    return row


def latest_check(store_id: int, day: date, now: dict) -> dict | None:
    """The newest check of the day with what changed since (empty: the figures are as checked)."""
    found = checks(store_id, day)
    if not found:
        return None
    last = found[0]
    return {"check": last, "changes": changes(last.totals or {}, now)}


def local_time(store, at: datetime) -> datetime:
    return as_utc(at).astimezone(zone(store.timezone))


# Who sees what ---------------------------------------------------------------------------

def sees_every_cashier(actor: Actor) -> bool:
    return actor.role in (MANAGER, ADMIN)


def store_for(actor: Actor, store_code: str | None):
    """The store whose day the actor asks for (their home store if none named). Managers see every
    store; a cashier or front desk only their home store's day (403 `other_store`; one without a
    home store sees none, 403 `no_home_store`: the account names no drawer they answer for)."""
    if not sees_every_cashier(actor):
        if actor.store_id is None:
            raise Forbidden(_("Your account has no home store: ask a manager to set one to see its day-end."),
                            code="no_home_store", field="store_code")
        store = stores.get_by_code(store_code) if store_code else db.session.get(Store, actor.store_id)
        if store.id != actor.store_id:
            raise Forbidden(_("You see the day-end of your own store only."), code="other_store",
                            field="store_code")
        return store
    if store_code:
        return stores.get_by_code(store_code)
    if actor.store_id:
        return db.session.get(Store, actor.store_id)
    return next(iter(stores.list_stores()), None) or stores.get_by_code("")


def for_viewer(day_end: dict, actor: Actor) -> dict:
    """A manager sees every cashier; a cashier or front desk sees the store's totals and money
    taken, their own section, and the voids and refunds they took part in."""
    if sees_every_cashier(actor):
        return day_end
    me = actor.staff_id

    def mine(staff):
        return staff is not None and staff["id"] == me
    return {**day_end, "cashiers": [c for c in day_end["cashiers"] if mine(c["staff"])],
            "voids": [v for v in day_end["voids"] if mine(v["closed_by"]) or mine(v["voided_by"])],
            "refunds": [r for r in day_end["refunds"] if mine(r["staff"])]}


# As JSON ---------------------------------------------------------------------------------

def _money_bills(b):
    return {**{k: b[k] for k in ("bills", "covers")}, **{k: money(b[k]) for k in MONEY_FIGURES},
            "tenders": {m: money(v) for m, v in b["tenders"].items()}}


def _money_section(s):
    return {"closed": _money_bills(s["closed"]), "voided": _money_bills(s["voided"]), "net": _money_bills(s["net"]),
            "card_fees": {"count": s["card_fees"]["count"], "amount": money(s["card_fees"]["amount"]),
                          "by_method": {m: money(v) for m, v in s["card_fees"]["by_method"].items()}},
            "top_ups": {"count": s["top_ups"]["count"], "principal": money(s["top_ups"]["principal"]),
                        "bonus": money(s["top_ups"]["bonus"]),
                        "by_method": {m: {"count": v["count"], "principal": money(v["principal"]),
                                          "bonus": money(v["bonus"])}
                                      for m, v in s["top_ups"]["by_method"].items()}},
            "refunds": {"count": s["refunds"]["count"], "principal": money(s["refunds"]["principal"]),
                        "bonus": money(s["refunds"]["bonus"])}}


def shown_check(check: DayEndCheck, store) -> dict:
    return {"id": check.id, "store_code": store.code, "date": check.day,
            "checked_by": {"id": check.staff.id, "username": check.staff.username,
                           "name": check.staff.name or check.staff.username},
            "checked_at": as_utc(check.checked_at), "note": check.note,
            "totals": {k: (v if k in COUNTS else money(v)) for k, v in (check.totals or {}).items()}}


def as_json(day_end: dict) -> dict:
    """The day-end as the API answers it: money as "12.34", times in UTC."""
    store = day_end["store"]
    now = totals(day_end)
    history = checks(store.id, day_end["date"])
    since = changes(history[0].totals or {}, now) if history else None
    return {"store_code": store.code, "store": store.name, "date": day_end["date"], "timezone": store.timezone,
            "from_": day_end["from"].astimezone(timezone.utc), "to": day_end["to"].astimezone(timezone.utc),
            "methods": [{"method": m, "label": method_label(m)} for m in methods_of(day_end)],
            "total": _money_section(day_end["total"]),
            "cashiers": [{"staff": c["staff"], **_money_section(c)} for c in day_end["cashiers"]],
            "voids": [{**v, **{k: money(v[k]) for k in MONEY_FIGURES},
                       "tenders": {m: money(a) for m, a in v["tenders"].items()}} for v in day_end["voids"]],
            "refunds": [{**r, "principal": money(r["principal"]), "bonus": money(r["bonus"])}
                        for r in day_end["refunds"]],
            "takings": {m: money(v) for m, v in day_end["takings"].items()},
            "fingerprint": fingerprint(now),
            "checks": [shown_check(c, store) for c in history],
            "changed_since_check": None if since is None else [
                {**c, **{k: (c[k] if c["figure"] in COUNTS else money(c[k])) for k in ("then", "now", "difference")}}
                for c in since]}


# As a table (CSV, Excel) ---------------------------------------------------------------

def header() -> list[str]:
    return [_("Section"), _("Cashier"), _("Figure"), _("Closed"), _("Voided"), _("Net"), _("Detail")]


def _who(staff, unknown):
    return (staff or {}).get("name") or unknown


def _stamp(store, at: datetime) -> str:
    return local_time(store, at).strftime("%Y-%m-%d %H:%M")


def table_rows(day_end: dict) -> list[tuple]:
    """The day-end as flat rows: per section and cashier each figure closed, voided and net; then
    card fees, top-ups, refunds, the voids one by one, the money taken by method and the checks."""
    store, unknown = day_end["store"], _("Not recorded")
    rows = []
    names = {"bills": _("Bills"), "covers": _("Covers"), "sales": _("Sales"), "coupon_discount": _("Coupons"),
             "points_value": _("Points"), "paid": _("Paid (all tenders)")}
    parts = [(_("Store total"), day_end["total"])] + [(_who(c["staff"], unknown), c) for c in day_end["cashiers"]]
    for who, s in parts:
        section = _("Bills")
        for k in ("bills", "covers"):
            rows.append((section, who, names[k], s["closed"][k], s["voided"][k], s["net"][k], ""))
        for k in ("sales", "coupon_discount", "points_value"):
            rows.append((section, who, names[k], money(s["closed"][k]), money(s["voided"][k]), money(s["net"][k]), ""))
        for m, v in s["net"]["tenders"].items():
            rows.append((_("Tenders"), who, method_label(m), money(s["closed"]["tenders"].get(m, 0)),
                         money(s["voided"]["tenders"].get(m, 0)), money(v), ""))
        rows.append((_("Tenders"), who, names["paid"], money(s["closed"]["paid"]), money(s["voided"]["paid"]),
                     money(s["net"]["paid"]), ""))
        for m, v in s["card_fees"]["by_method"].items():
            rows.append((_("Card fees"), who, method_label(m), "", "", money(v), ""))
        for m, v in s["top_ups"]["by_method"].items():
            rows.append((_("Top-ups"), who, method_label(m), "", "", money(v["principal"]),
                         _("%(count)d top-ups, bonus %(bonus)s", count=v["count"], bonus=money(v["bonus"]))))
        if s["refunds"]["count"]:
            rows.append((_("Refunds"), who, _("Stored value paid back"), "", "", money(s["refunds"]["principal"]),
                         _("%(count)d refunds, bonus forfeited %(bonus)s", count=s["refunds"]["count"],
                           bonus=money(s["refunds"]["bonus"]))))
    for v in day_end["voids"]:
        rows.append((_("Voids"), _who(v["closed_by"], unknown), _("Bill %(id)d", id=v["checkout_id"]),
                     money(v["sales"]), money(v["paid"]), "",
                     _("closed %(closed)s, voided %(voided)s by %(who)s: %(reason)s",
                       closed=_stamp(store, v["closed_at"]), voided=_stamp(store, v["voided_at"]),
                       who=_who(v["voided_by"], unknown), reason=v["reason"])))
    for r in day_end["refunds"]:
        detail = _("%(at)s, bonus forfeited %(bonus)s: %(reason)s", at=_stamp(store, r["at"]),
                   bonus=money(r["bonus"]), reason=r["reason"])
        if r["written_off"]:
            detail = _("Written off at an erasure, nothing paid back.") + " " + detail
        rows.append((_("Refunds"), _who(r["staff"], unknown), _("Member %(id)d", id=r["member_id"]), "", "",
                     money(r["principal"]), detail))
    for m, v in day_end["takings"].items():
        rows.append((_("Money taken"), _("Store total"), method_label(m), "", "", money(v), ""))
    return rows
