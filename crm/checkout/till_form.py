"""The till page's form as a bill: its lines, what the cashier just did (a scan, a tap on an
item, + / −, a coupon tapped, "use all points"), its coupons and how it is paid — turned into
the checkout body the service takes (the API's schema, so a rule is written once).

The page works without JavaScript: every tap is a submit button whose name says what it does
(`add`, `inc`, `dec`, `coupon`, `use_points`, `use_wallet`, `category`) and the page comes back
with the bill re-priced. till.js only does the same requests without reloading the page.
"""
import re
from dataclasses import dataclass, field

from flask import g
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from ..cards import service as cards
from ..catalog import service as catalog
from ..coupons.models import Coupon
from ..extensions import db
from ..members import search_limit
from ..members import service as members
from .schemas import CheckoutInSchema

_LINE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:[x×*\s]\s*(\d+))?\s*$")
_SCAN_QTY = re.compile(r"^(.+?)\s*[x×*]\s*(\d{1,3})$")  # "SALMON*2" from a keyboard
PAY_METHODS = ("cash", "bank_card", "wechat_pay", "alipay", "company_account")  # the last for signers only
MAX_QTY = 999
# Fields that belong to the guest: a new member scanned clears them (their coupons, points
# and stored value are not the next guest's).
_GUEST_FIELDS = ("redeem_points", "wallet_amount")
_BILL_OPS = ("add", "inc", "dec", "coupon", "use_points", "use_wallet")


def parse_lines(text: str):
    """'SALMON 2' / 'SALMON×2' / 'TEA' per line -> [{"sku", "qty"}]; raises ValidationError."""
    lines, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            bad.append(number)
            continue
        lines.append({"sku": match[1].upper(), "qty": int(match[2] or 1)})
    if bad:
        raise ValidationError({"items": [_("Lines %(lines)s are not 'SKU quantity'.",
                                           lines=", ".join(map(str, bad)))]})
    return lines


class _Lines:
    """The bill's lines by SKU, in the order first added; one line per SKU."""

    def __init__(self):
        self.qty = {}

    def add(self, sku: str, qty):
        sku = sku.strip().upper()
        if not sku:
            return
        current = self.qty.get(sku, 0)
        if isinstance(current, int) and isinstance(qty, int):
            self.qty[sku] = min(current + qty, MAX_QTY)
        else:  # a quantity that is not a number: the schema names it
            self.qty[sku] = qty

    def step(self, sku: str, delta: int):
        sku = sku.strip().upper()
        current = self.qty.get(sku, 0)
        current = current if isinstance(current, int) else 0
        if current + delta <= 0:
            self.qty.pop(sku, None)
        else:
            self.qty[sku] = min(current + delta, MAX_QTY)

    def as_list(self):
        return [{"sku": sku, "qty": qty} for sku, qty in self.qty.items() if qty != 0]


def _int_or_raw(value: str):
    value = (value or "").strip()
    return int(value) if value.isdecimal() else value  # not isdigit(): "²" is a digit int() refuses


@dataclass
class TillForm:
    fields: dict  # what the page shows again in its inputs (never the PIN)
    lines: list  # [{"sku", "qty"}]
    coupons: list  # coupon codes applied, in the order tapped
    changed: bool = False  # this submission changed the bill: show it priced, never close it
    search: str = ""  # a scan that named no item, member or coupon: the catalogue's filter
    category: str = ""
    errors: dict = field(default_factory=dict)
    notice: str = ""
    repriced: str = ""  # Confirm was pressed on a form edited since it was priced

    def body(self, pin: str = "") -> dict:
        """The checkout body (CheckoutInSchema); raises ValidationError naming the field."""
        f = self.fields
        body = {"store_code": f.get("store_code", ""), "items": self.lines,
                "redeem_points": f.get("redeem_points") or 0, **member_reference(f.get("card_code", ""))}
        for key in ("covers", "segment"):
            if f.get(key):
                body[key] = f[key]
        promos = [c for c in re.split(r"[,\s，]+", f.get("promotion_codes", "")) if c]
        if promos:
            body["promotion_codes"] = promos
        if self.coupons:
            body["coupon_codes"] = self.coupons
        if f.get("wallet_amount", "").strip():
            body["wallet_amount"] = f["wallet_amount"].strip()
        if pin.strip():
            body["pin"] = pin.strip()
        body["tenders"] = self.tenders()
        return CheckoutInSchema().load(body)  # counts typed as text are read by crm.core.fields.Int

    def tenders(self) -> list:
        """Split amounts typed: those parts exactly; else the chosen method pays the rest."""
        split = [{"method": m, "amount": self.fields[f"split_{m}"]} for m in PAY_METHODS
                 if self.fields.get(f"split_{m}", "").strip()]
        if split:
            return split
        method = self.fields.get("pay_method") or "cash"
        return [{"method": method if method in PAY_METHODS else "cash"}]

    @property
    def split(self) -> bool:
        return any(self.fields.get(f"split_{m}", "").strip() for m in PAY_METHODS)


def member_reference(code: str) -> dict:
    """A scanned or typed card code, or a full mobile number, as the checkout body expects."""
    code = code.strip()
    if not code:
        return {}
    if members.is_exact_query(code) and not cards.card_no_from_code(code):
        search_limit.spend(g.actor, code, field="card_code")  # a mobile can be guessed: it is a member search
        found = db.session.scalars(members.search(code)).first()
        if found is None:
            raise ValidationError({"card_code": [_("No member has this mobile number. Check it, or leave the "
                                                   "field empty for a guest.")]})
        return {"member_id": found.id}
    return {"card_code": code}


def _looks_like_member(text: str) -> bool:
    return text.upper().startswith(("CRM1.", "CRM2.")) or members.is_exact_query(text)


def _coupon_code(text: str) -> str | None:
    code = text.strip().upper()
    if not code or len(code) > 20:
        return None
    return db.session.scalar(select(Coupon.code).where(Coupon.code == code))


def read(form, *, store=None, today=None) -> TillForm:
    """The till form after what the cashier just did. `store` and `today` are where the
    catalogue search of an unrecognised scan looks (None: no search)."""
    fields = {k: v for k, v in form.items() if k not in ("pin", "csrf_token")}
    lines, errors = _Lines(), {}
    for sku, qty in zip(form.getlist("sku"), form.getlist("qty"), strict=False):
        qty = _int_or_raw(qty)
        if qty != 0:
            lines.add(sku, qty)
    typed = form.get("items", "")
    try:
        for line in parse_lines(typed):
            lines.add(line["sku"], line["qty"])
        fields["items"] = ""  # now lines of the bill: sent again as such, not twice
    except ValidationError as exc:
        errors["items"] = exc.messages["items"][0]  # kept in the box, to correct
    coupons = []
    for value in form.getlist("coupon_codes"):
        coupons += [c.upper() for c in re.split(r"[,\s，]+", value) if c and c.upper() not in coupons]
    state = TillForm(fields=fields, lines=[], coupons=coupons, category=form.get("category", "").strip(),
                     errors=errors)
    state.changed = any(form.get(op) for op in _BILL_OPS)
    if form.get("add"):
        lines.add(form["add"], 1)
    if form.get("inc"):
        lines.step(form["inc"], 1)
    if form.get("dec"):
        lines.step(form["dec"], -1)
    if form.get("coupon"):
        code = form["coupon"].strip().upper()
        state.coupons = [c for c in coupons if c != code] if code in coupons else coupons + [code]
    if form.get("use_points"):
        fields["redeem_points"] = form["use_points"]
    if form.get("use_wallet"):
        fields["wallet_amount"] = form["use_wallet"]
    _scan(state, lines, form.get("scan", "").strip(), store, today)
    state.lines = lines.as_list()
    return state


def _scan(state: TillForm, lines: _Lines, text: str, store, today):
    """What a scanner (or the keyboard) typed into the one scan field, then Enter: an item's
    SKU (optionally `*qty`), a member's card or mobile, one of the member's coupons, or else
    words to find an item by (name, SKU or pinyin initials)."""
    state.fields["scan"] = ""
    if not text:
        return
    state.changed = True
    match = _SCAN_QTY.match(text)
    sku = catalog.find_sku(match[1] if match else text)
    if sku and not match and _looks_like_member(text) and db.session.scalars(members.search(text)).first():
        state.errors["scan"] = _("“%(text)s” is both an item's code and a member's mobile or card: type it in the "
                                 "Member card field for the member, or tap the item in the catalogue.", text=text)
        state.fields["scan"] = text
        return
    if sku:
        lines.add(sku, int(match[2]) if match else 1)
        return
    if _looks_like_member(text):
        if text != state.fields.get("card_code", "").strip():
            for key in _GUEST_FIELDS:
                state.fields.pop(key, None)
            state.fields.pop("member_ref", None)
            state.coupons = []
        state.fields["card_code"] = text
        return
    coupon = _coupon_code(text)
    if coupon:
        if coupon not in state.coupons:
            state.coupons.append(coupon)
        return
    if store is None:
        state.errors["scan"] = _("Choose the store first.")
        state.fields["scan"] = text
        return
    found = catalog.sellable_items(store, today, q=text, limit=50)
    if len(found) == 1:
        lines.add(found[0].sku, 1)
        return
    state.search = text
    state.fields["scan"] = text
    if not found:
        state.errors["scan"] = _("Nothing matches “%(text)s”: no item, member card, mobile or coupon. "
                                 "Check the code, or search by the item's name or pinyin initials.", text=text)
    else:
        state.notice = _("%(n)d items match “%(text)s”: tap one to add it.", n=len(found), text=text)
