"""Keyboard and screen-reader basics on the member, card, wallet and coupon pages (issue 13):
every id is unique and every label points at a field that exists, also on pages with several
forms and after a failed submit (when the error texts get ids of their own)."""
from collections import Counter
from html.parser import HTMLParser

from tests.test_ui import text, ui_login


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.label_for = Counter(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids[attrs["id"]] += 1
        if tag == "label" and attrs.get("for"):
            self.label_for.append(attrs["for"])


def _problems(html: str) -> dict:
    parsed = _Ids()
    parsed.feed(html)
    return {"duplicate ids": sorted(i for i, n in parsed.ids.items() if n > 1),
            "labels without their field": sorted(f for f in parsed.label_for if f not in parsed.ids)}


CLEAN = {"duplicate ids": [], "labels without their field": []}


def test_member_pages_have_unique_ids_and_labels_that_point_at_their_fields(app, staff, member_factory, issue_card,
                                                                           give_points, cashier):
    m = member_factory()
    card_no = issue_card(m["id"]).json["card_no"]
    give_points(m["id"], 100)
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "500.00", "payment_method": "cash"})
    ui = ui_login(app, "manager", lang="en")
    pages = {
        "member page": ui.get(f"/members/{m['id']}"),
        "member page, adjustment refused": ui.post(f"/members/{m['id']}/points/adjust", {"points": "x", "reason": ""}),
        "member page, bad history filter": ui.get(f"/members/{m['id']}?from=nope&to=nope"),
        "registration": ui.get("/members/new"),
        "registration refused": ui.post("/members/new", {"name": "", "mobile": "1", "store_code": "BJ01"}),
        "edit": ui.get(f"/members/{m['id']}/edit"),
        "search": ui.get("/?q=会员"),
        "freeze question": ui.post(f"/cards/{card_no}/freeze"),
        "coupons": ui.get("/catalog/coupons/"),
    }
    ui.get("/catalog/coupons/")
    pages["coupons, gift rule refused"] = ui.post("/catalog/coupons/gift", {"name": "", "min_topup": "x"})
    ui.get("/catalog/coupons/")
    pages["coupons, prize refused"] = ui.post("/catalog/coupons/prize", {"name": "", "weight": "x"})
    for name, response in pages.items():
        assert response.status_code in (200, 422), (name, response.status_code)
        assert _problems(text(response)) == CLEAN, name
    # The refused gift rule's errors sit beside its own fields, not the coupon type form's.
    refused = text(pages["coupons, gift rule refused"])
    assert 'id="e-gift-name"' in refused and 'aria-describedby="e-gift-name"' in refused
