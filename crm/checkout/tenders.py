"""How a bill is paid: its tenders (cash, bank card, WeChat Pay, Alipay, stored value).

A bill's tenders add up to what the guest pays once coupons and points are taken off:
the bill's `due` (paid by other means) plus `wallet_paid` (stored value). Rules:
- the stored-value tender *is* the wallet payment: a body may give it as a tender, as
  `wallet_amount`, or both if they agree;
- one tender may leave its amount out and then pays whatever is left ("the rest");
- a method named twice is one tender of the sum;
- no tenders at all (clients from before tenders): the wallet part is a stored-value
  tender and the rest one tender `other` (paid by means the client did not say).
"""
from typing import NamedTuple

from flask_babel import gettext as _

from ..core.money import format_fen
from ..errors import Invalid

WALLET = "stored_value"


class Tender(NamedTuple):
    method: str
    amount: int  # fen


ORDER = ("stored_value", "company_account", "cash", "bank_card", "wechat_pay", "alipay", "other")
COMPANY = "company_account"  # sign-for-bill (挂账): charged to the signer's company account (crm/corporate)


def wallet_amount(data: dict) -> int:
    """The stored-value payment a checkout body asks for (from `wallet_amount` and/or a
    stored-value tender); 422 if the two disagree."""
    given = data.get("wallet_amount") or 0
    tenders = data.get("tenders")
    if not tenders:
        return given
    in_tenders = [t for t in tenders if t["method"] == WALLET]
    if any(t.get("amount") is None for t in in_tenders):
        raise Invalid(_("Give the stored-value payment's amount."), code="tender_amount_missing", field="tenders")
    from_tenders = sum(t["amount"] for t in in_tenders)
    if in_tenders and given and from_tenders != given:
        raise Invalid(_("The stored-value tender (%(tender)s) and the wallet amount (%(wallet)s) differ; "
                        "send one of them, or the same amount in both.",
                        tender=format_fen(from_tenders), wallet=format_fen(given)),
                      code="tender_wallet_mismatch", field="tenders")
    return from_tenders if in_tenders else given


def settle(tenders, wallet_paid: int, due: int) -> list[Tender]:
    """[Tender(method, fen)] in a fixed order for a bill whose other-means part is `due`;
    422 `tenders_do_not_add_up` (with the figures) unless the parts make exactly due."""
    out = {WALLET: wallet_paid} if wallet_paid else {}
    if tenders is None:
        if due:
            out["other"] = due
        return _ordered(out)
    others = [t for t in tenders if t["method"] != WALLET]
    open_ended = [t for t in others if t.get("amount") is None]
    if len(open_ended) > 1:
        raise Invalid(_("Only one payment may leave its amount out (it pays the rest)."),
                      code="tender_amount_missing", field="tenders")
    tendered = 0
    for tender in others:
        if tender.get("amount") is None:
            continue
        if tender["amount"] <= 0:
            raise Invalid(_("Each payment needs an amount above zero; remove the empty ones."),
                          code="tender_not_positive", field="tenders")
        out[tender["method"]] = out.get(tender["method"], 0) + tender["amount"]
        tendered += tender["amount"]
    rest = due - tendered
    if rest > 0 and open_ended:
        method = open_ended[0]["method"]
        out[method] = out.get(method, 0) + rest
        rest = 0
    if rest != 0:
        message = (_("The payments add up to %(paid)s but %(due)s is due: %(diff)s is missing. "
                     "Add it to a payment so they add up to %(due)s.",
                     paid=format_fen(tendered), due=format_fen(due), diff=format_fen(rest)) if rest > 0 else
                   _("The payments add up to %(paid)s but only %(due)s is due: %(diff)s too much. "
                     "Lower a payment so they add up to %(due)s.",
                     paid=format_fen(tendered), due=format_fen(due), diff=format_fen(-rest)))
        raise Invalid(message, code="tenders_do_not_add_up", field="tenders", due=format_fen(due),
                      tendered=format_fen(tendered), difference=format_fen(rest))
    return _ordered(out)


def company_amount(settled) -> int:
    """What a settled bill charges to the company account."""
    return sum(t.amount for t in settled if t.method == COMPANY)


def _ordered(amounts: dict) -> list[Tender]:
    return [Tender(method, amounts[method]) for method in ORDER if amounts.get(method)]
