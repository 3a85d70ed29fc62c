"""Corporate accounts at the till (挂账): a company's account, its signers, sign-for-bill charges,
voids, payments received, monthly statements and the ageing of what is owed.

Rules (docs/rules.md, "Corporate accounts"):
- A company has at most one account: a credit limit, what it owes (`owed`) and whether it is
  active. `owed` = Σ of its ledger entries, always; every change is one conditional UPDATE of
  the account row plus one entry, in the bill's (or payment's) transaction.
- A bill is charged to the account only for a member who is an authorised signer of their
  company's active account, and only if owed + amount ≤ credit limit — decided by the UPDATE's
  WHERE, so twenty tills closing at once never take the account past its limit (409
  `credit_limit_exceeded`, with what is still available).
- A manager may lower the limit below what is owed: nothing is taken back, new charges are
  refused until payments bring owed + amount under it. A suspended account takes no charges;
  payments and voids still post to it.
- A void gives the charge back with a `reversal` entry (once: unique per bill and kind). A void
  of a bill the company already paid for leaves the account in credit (owed < 0); the credit
  pays the next charges.
- A payment is at most what is owed (else 422 `payment_exceeds_owed`): no prepayment on account.
- Ageing allocates payments (and other credits) to the oldest charges first (FIFO).

Lock order (core/locks.py): the company account row is taken after the member lock, the checkout
row and the PIN row, before coupons, wallet and points. Payments and account changes take the
account row only, and nothing holding it ever waits for a member lock, so no cycle can form.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import selectinload

from ..core import audit
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.money import format_fen
from ..core.timeutil import local_today, utcnow, zone
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..members import companies
from ..members.models import Member
from .models import CompanyAccount, CompanyAccountEntry, CompanySigner

TENDER = "company_account"
AGE_BUCKETS = ("current", "days_31_60", "days_61_90", "over_90")

_CHARGE = text("UPDATE company_accounts SET owed = owed + :amount WHERE id = :id AND active "
               "AND owed + :amount <= credit_limit")
_CREDIT = text("UPDATE company_accounts SET owed = owed - :amount WHERE id = :id")
_PAY = text("UPDATE company_accounts SET owed = owed - :amount WHERE id = :id AND owed >= :amount")


# --- accounts and signers ----------------------------------------------------------------------

def find_account(company_id: int) -> CompanyAccount | None:
    return db.session.scalar(select(CompanyAccount).where(CompanyAccount.company_id == company_id))


def get_account(company_id: int) -> CompanyAccount:
    companies.get(company_id)  # 404 for an unknown company first
    account = find_account(company_id)
    if account is None:
        raise NotFound(_("This company has no account yet: open one with a credit limit."),
                       code="company_account_not_found")
    return account


def save_account(actor: Actor, company_id: int, *, credit_limit: int,
                 active: bool | None = None) -> tuple[CompanyAccount, bool]:
    """Open the company's account or change its limit / suspend it. (account, created). `active`
    None: a new account is active, an existing one keeps its state (a limit change must not lift a
    suspension by leaving the field out)."""
    company = companies.get(company_id)
    account = find_account(company_id)
    if active is None:
        active = True if account is None else account.active
    if account is None:
        account = CompanyAccount(company_id=company.id, credit_limit=credit_limit, owed=0, active=active)
        db.session.add(account)
        db.session.flush()  # a second opening at once fails the unique key: 409 concurrent_change
        audit.record(actor, "company_account.open", entity=account, company_id=company.id,
                     credit_limit=credit_limit, active=active)
        return account, True
    # Not a read-modify-write of owed: only the limit and the state change; the row lock orders it
    # after (or before) a charge in flight, whose WHERE then sees the new limit.
    db.session.execute(text("UPDATE company_accounts SET credit_limit = :limit, active = :active, "
                            "updated_at = :now WHERE id = :id"),
                       {"limit": credit_limit, "active": active, "now": utcnow(), "id": account.id})
    db.session.refresh(account)
    audit.record(actor, "company_account.update", entity=account, company_id=company.id,
                 credit_limit=credit_limit, active=active)
    return account, False


def add_signer(actor: Actor, company_id: int, member_id: int) -> tuple[CompanySigner, bool]:
    account = get_account(company_id)
    member = db.session.get(Member, member_id)
    if member is None:
        raise NotFound(_("No such member."), code="unknown_member")
    if member.merged_into_id is not None:
        raise Conflict(_("This member was merged into member %(id)d.", id=member.merged_into_id),
                       code="member_merged", survivor_id=member.merged_into_id)
    from ..members import pipl  # late: pipl imports half the app
    pipl.ensure_not_anonymised(member)  # an erased member (PIPL) is given no authority to sign
    if member.company_id != company_id:
        raise Invalid(_("Only a member of this company can sign for it: set the member's company first."),
                      code="signer_not_of_company", field="member_id")
    found = db.session.scalar(select(CompanySigner).where(CompanySigner.account_id == account.id,
                                                          CompanySigner.member_id == member_id))
    if found is not None:
        return found, False
    signer = CompanySigner(account_id=account.id, member_id=member_id)
    db.session.add(signer)
    db.session.flush()
    audit.record(actor, "company_account.signer_add", entity=account, member_id=member_id)
    return signer, True


def remove_signer(actor: Actor, company_id: int, member_id: int):
    account = get_account(company_id)
    gone = db.session.execute(CompanySigner.__table__.delete().where(
        CompanySigner.account_id == account.id, CompanySigner.member_id == member_id)).rowcount
    if not gone:
        raise NotFound(_("This member is not a signer of this company."), code="signer_not_found")
    db.session.expire(account, ["signers"])
    audit.record(actor, "company_account.signer_remove", entity=account, member_id=member_id)


def signer_account(member) -> CompanyAccount | None:
    """The account this member may sign bills to (their company's, if they are a signer), else None."""
    if member is None or member.company_id is None:
        return None
    return db.session.scalar(
        select(CompanyAccount).join(CompanySigner, CompanySigner.account_id == CompanyAccount.id)
        .where(CompanyAccount.company_id == member.company_id, CompanySigner.member_id == member.id))


def signed_company(checkout_id: int):
    """The company a bill was signed to (for its receipt), or None."""
    company = companies.Company
    return db.session.scalar(select(company).join(CompanyAccount, CompanyAccount.company_id == company.id)
                             .join(CompanyAccountEntry, CompanyAccountEntry.account_id == CompanyAccount.id)
                             .where(CompanyAccountEntry.checkout_id == checkout_id,
                                    CompanyAccountEntry.kind == "charge"))


def company_discount_bp(member) -> int:
    """The negotiated discount of the member's company (0: none), for pricing."""
    if member is None or member.company_id is None:
        return 0
    return member.company.discount_bp if member.company is not None else 0


# --- sign-for-bill -------------------------------------------------------------------------------

def check_signer(member) -> CompanyAccount:
    """The account a bill of this member may be signed to; 422/409 saying why not."""
    if member is None:
        raise Invalid(_("Only a member who signs for their company can charge a bill to it."),
                      code="company_account_needs_member", field="tenders")
    account = signer_account(member)
    if account is None:
        raise Invalid(_("This member is not an authorised signer of a company account."),
                      code="not_a_signer", field="tenders")
    if not account.active:
        raise Conflict(_("The company account of %(company)s is suspended: take another payment.",
                         company=account.company.name), code="company_account_suspended", field="tenders")
    return account


def charge(actor: Actor, member, amount: int, *, checkout_id: int, store_id: int, at: datetime | None = None):
    """Charge a bill to the signer's company account: the conditional UPDATE decides (owed + amount
    ≤ limit, account active), then the entry. In the bill's transaction."""
    account = check_signer(member)
    won = db.session.execute(_CHARGE, {"amount": amount, "id": account.id}).rowcount
    if won != 1:
        db.session.refresh(account)
        if not account.active:
            raise Conflict(_("The company account of %(company)s is suspended: take another payment.",
                             company=account.company.name), code="company_account_suspended", field="tenders")
        raise Conflict(_("Over the company's credit limit: %(available)s is available to charge, the bill needs "
                         "%(amount)s. Take the rest another way.", available=format_fen(account.available),
                         amount=format_fen(amount)),
                       code="credit_limit_exceeded", field="tenders", available=format_fen(account.available),
                       credit_limit=format_fen(account.credit_limit), owed=format_fen(account.owed),
                       amount=format_fen(amount))
    _entry(account.id, "charge", amount, checkout_id=checkout_id, member_id=member.id, store_id=store_id,
           staff_id=actor.staff_id, created_at=at or utcnow())
    return account


def reverse_checkout(actor: Actor, checkout, reason: str) -> int:
    """A void gives the bill's charge back (a `reversal` entry); 0 if the bill charged nothing."""
    found = db.session.execute(select(CompanyAccountEntry.account_id, CompanyAccountEntry.amount)
                               .where(CompanyAccountEntry.checkout_id == checkout.id,
                                      CompanyAccountEntry.kind == "charge")).first()
    if found is None:
        return 0
    account_id, amount = found
    db.session.execute(_CREDIT, {"amount": amount, "id": account_id})
    _entry(account_id, "reversal", -amount, checkout_id=checkout.id, member_id=checkout.member_id,
           store_id=checkout.store_id, staff_id=actor.staff_id, note=reason[:200],
           created_at=checkout.voided_at or utcnow())  # the void's time, as the bill says it
    return amount


def _entry(account_id: int, kind: str, amount: int, **values):
    db.session.execute(insert(CompanyAccountEntry).values(account_id=account_id, kind=kind, amount=amount, **values))


# --- payments ------------------------------------------------------------------------------------

def record_payment(actor: Actor, company_id: int, *, amount: int, method: str, reference: str = "",
                   received_on: date | None = None) -> CompanyAccountEntry:
    account = get_account(company_id)
    today = local_today()
    received_on = received_on or today
    if received_on > today:
        raise Invalid(_("A payment cannot be received in the future."), code="received_in_future",
                      field="received_on")
    if received_on < date(2000, 1, 1):
        raise Invalid(_("Enter the date the payment was received."), code="invalid_date", field="received_on")
    won = db.session.execute(_PAY, {"amount": amount, "id": account.id}).rowcount
    if won != 1:
        db.session.refresh(account)
        raise Invalid(_("The company owes %(owed)s: a payment cannot be more than that.",
                        owed=format_fen(max(account.owed, 0))),
                      code="payment_exceeds_owed", field="amount", owed=format_fen(account.owed))
    entry = CompanyAccountEntry(account_id=account.id, kind="payment", amount=-amount, method=method,
                                reference=reference or None, received_on=received_on, staff_id=actor.staff_id,
                                created_at=utcnow())
    db.session.add(entry)
    db.session.flush()
    db.session.refresh(account)
    audit.record(actor, "company_account.payment", entity=account, amount=amount, method=method,
                 received_on=received_on.isoformat())
    return entry


# --- statements and ageing -----------------------------------------------------------------------

def payment_method_names() -> dict:
    return {"bank_transfer": _("Bank transfer"), "cash": _("Cash"), "cheque": _("Cheque"),
            "wechat_pay": _("WeChat Pay"), "alipay": _("Alipay"), "other": _("Other")}


def payment_method_name(method: str | None) -> str:
    """How a payment's means reads on a statement (the page, the PDF a company is sent)."""
    return payment_method_names().get(method, method) if method else ""


def _local_date(at: datetime) -> date:
    return at.astimezone(zone()).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), zone())


@dataclass
class Statement:
    account: CompanyAccount
    year: int
    month: int
    opening: int
    lines: list  # dicts
    closing: int
    totals: dict


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """(first day, first day of the next month); 422 for a month outside 2000-01 … this month."""
    if not (2000 <= year <= 2100) or not (1 <= month <= 12):
        raise Invalid(_("Choose a month from January 2000 to this month."), code="invalid_period", field="month")
    first = date(year, month, 1)
    if first > local_today():
        raise Invalid(_("Choose a month from January 2000 to this month."), code="invalid_period", field="month")
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following


def statement(company_id: int, year: int, month: int) -> Statement:
    account = get_account(company_id)
    first, following = month_bounds(year, month)
    start, end = _start_of(first), _start_of(following)
    e = CompanyAccountEntry
    opening = db.session.scalar(select(func.coalesce(func.sum(e.amount), 0))
                                .where(e.account_id == account.id, e.created_at < start)) or 0
    entries = db.session.scalars(select(e).where(e.account_id == account.id, e.created_at >= start,
                                                 e.created_at < end).order_by(e.created_at, e.id)
                                 .options(selectinload(e.store), selectinload(e.member))).all()
    balance, lines = opening, []
    totals = {"charges": 0, "reversals": 0, "payments": 0, "adjustments": 0}
    for entry in entries:
        balance += entry.amount
        totals[{"charge": "charges", "reversal": "reversals", "payment": "payments",
                "adjustment": "adjustments"}[entry.kind]] += entry.amount
        lines.append({"date": _local_date(entry.created_at), "kind": entry.kind,
                      "store": entry.store.name if entry.store else "",
                      "bill_no": entry.checkout_id, "signer": entry.member.name if entry.member else "",
                      "reference": " ".join(x for x in (payment_method_name(entry.method), entry.reference or "",
                                                          entry.received_on.isoformat() if entry.received_on else "")
                                            if x),
                      "amount": entry.amount, "balance": balance})
    return Statement(account, year, month, opening, lines, balance, totals)


def _age_bucket(days: int) -> str:
    if days <= 30:
        return "current"
    if days <= 60:
        return "days_31_60"
    if days <= 90:
        return "days_61_90"
    return "over_90"


def ageing(as_of: date | None = None) -> dict:
    """Per company account: what is owed at the end of `as_of` (default today), split by the age
    of the charges it comes from (current = 0–30 days, 31–60, 61–90, over 90) after payments and
    other credits are allocated to the oldest charges first; `credit` is what a company has paid
    beyond its charges (a paid bill voided)."""
    today = local_today()
    as_of = as_of or today
    if as_of > today or as_of < date(2000, 1, 1):
        raise Invalid(_("Choose a date from 2000 to today."), code="invalid_date", field="as_of")
    end = _start_of(as_of + timedelta(days=1))
    e = CompanyAccountEntry
    accounts = db.session.scalars(select(CompanyAccount)).all()
    by_account = {a.id: [] for a in accounts}
    for entry in db.session.execute(select(e.account_id, e.kind, e.amount, e.checkout_id, e.created_at, e.id)
                                    .where(e.created_at < end).order_by(e.created_at, e.id)):
        by_account.setdefault(entry.account_id, []).append(entry)
    rows, totals = [], dict.fromkeys((*AGE_BUCKETS, "credit", "owed"), 0)
    for account in sorted(accounts, key=lambda a: a.company.name):
        entries = by_account.get(account.id, [])
        reversed_bills = {x.checkout_id: -x.amount for x in entries if x.kind == "reversal"}
        debits, credit = [], 0
        for x in entries:
            if x.kind == "charge":
                net = x.amount - reversed_bills.pop(x.checkout_id, 0)
                if net > 0:
                    debits.append([_local_date(x.created_at), net])
                else:
                    credit += -net
            elif x.kind == "reversal":
                continue  # netted against its charge above
            elif x.amount > 0:  # a positive adjustment ages like a charge
                debits.append([_local_date(x.created_at), x.amount])
            else:
                credit += -x.amount
        for debit in debits:  # FIFO: credits pay the oldest charges first
            taken = min(debit[1], credit)
            debit[1] -= taken
            credit -= taken
        row = dict.fromkeys(AGE_BUCKETS, 0)
        for day, left in debits:
            row[_age_bucket((as_of - day).days)] += left
        row["credit"] = credit
        row["owed"] = sum(row[b] for b in AGE_BUCKETS) - credit
        if not entries and not account.active:
            continue
        for key in totals:
            totals[key] += row[key]
        rows.append({"company_id": account.company_id, "company": account.company.name,
                     "credit_limit": account.credit_limit, "active": account.active, **row})
    return {"as_of": as_of, "companies": rows, "totals": totals}


def audit_mismatches() -> list[str]:
    """Accounts whose owed is not the sum of their entries, and bills whose charge does not match
    their `company_account` tender or their state (part of `crm audit`, via checkout's)."""
    return owed_mismatches() + bill_mismatches()


def bill_mismatches() -> list[str]:
    """A bill's company_account tender is its charge; a voided bill's charge is reversed, and
    only a voided bill's."""
    from ..checkout.models import Checkout, CheckoutTender
    e = CompanyAccountEntry
    tendered = dict(db.session.execute(select(CheckoutTender.checkout_id, CheckoutTender.amount)
                                       .where(CheckoutTender.method == TENDER)).all())
    charged = dict(db.session.execute(select(e.checkout_id, e.amount).where(e.kind == "charge")).all())
    reversed_ = dict(db.session.execute(select(e.checkout_id, e.amount).where(e.kind == "reversal")).all())
    # A subquery, not the ids as parameters: PostgreSQL takes at most 65,535 in one statement.
    voided = set(db.session.scalars(select(Checkout.id).where(
        Checkout.status == "voided", Checkout.id.in_(select(e.checkout_id).where(e.kind == "charge")))))
    out = [f"checkout {cid}: company account tender {format_fen(tendered.get(cid, 0))} but charge "
           f"{format_fen(charged.get(cid, 0))}" for cid in sorted(set(tendered) | set(charged))
           if tendered.get(cid, 0) != charged.get(cid, 0)]
    out += [f"checkout {cid}: company account charge {format_fen(charged[cid])}, reversal "
            f"{format_fen(-reversed_.get(cid, 0))}, bill {'voided' if cid in voided else 'not voided'}"
            for cid in sorted(set(charged) | set(reversed_))
            if reversed_.get(cid, 0) != (-charged.get(cid, 0) if cid in voided else 0)]
    return out


def owed_mismatches() -> list[str]:
    """Accounts whose owed is not the sum of their entries."""
    e = CompanyAccountEntry
    sums = select(e.account_id, func.sum(e.amount).label("total")).group_by(e.account_id).subquery()
    found = db.session.execute(select(CompanyAccount.id, CompanyAccount.owed, func.coalesce(sums.c.total, 0))
                               .outerjoin(sums, sums.c.account_id == CompanyAccount.id)
                               .where(CompanyAccount.owed != func.coalesce(sums.c.total, 0))).all()
    return [f"company account {aid}: owed {format_fen(owed)} but its entries add up to {format_fen(total)}"
            for aid, owed, total in found]


def accounts():
    return db.session.scalars(select(CompanyAccount).join(CompanyAccount.company)
                              .order_by(func.lower(companies.Company.name))).all()


def get_company(company_id: int):
    return get_or_404(companies.Company, company_id, _("No such company."))
