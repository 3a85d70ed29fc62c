"""Registering a member at the front desk (issue 13): the error summary names each field, and
the card fee's payment method sits beside the fee with a default, so the first submit of a
filled-in form does not fail for it."""
import re

from tests.test_ui import text, ui_login


def _selected(page: str, select_id: str) -> str | None:
    select = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    chosen = re.search(r'<option value="([^"]*)"\s+selected>', select[1]) if select else None
    return chosen[1] if chosen else None


def test_error_summary_names_each_field_with_its_message(app, staff):
    ui = ui_login(app, "frontdesk", lang="en")
    ui.get("/members/new")
    r = ui.post("/members/new", {"name": "", "mobile": "", "store_code": "BJ01", "email": "nope"})
    assert r.status_code == 422
    summary = re.search(r'<div class="flash error" role="alert">(.*?)</div>', text(r), re.S)[1]
    items = re.findall(r"<li>(.*?)</li>", summary, re.S)
    assert '<a href="#f-name">Name</a>: Missing data for required field.' in items
    assert '<a href="#f-mobile">Mobile</a>: Missing data for required field.' in items
    assert any(i.startswith('<a href="#f-email">Email</a>: ') for i in items)
    for anchor in re.findall(r'href="#(f-\w+)"', summary):  # each link lands on its field
        assert f'id="{anchor}"' in text(r)


def test_card_fee_payment_sits_by_the_fee_with_a_default_so_the_first_submit_works(app, staff, login_api):
    ui = ui_login(app, "frontdesk", lang="en")
    page = text(ui.get("/members/new"))
    # Beside the fee, above the sticky button bar, and before the optional details.
    fee = page.index('name="issue_card"')
    method = page.index('id="f-payment_method"')
    assert fee < method < page.index('id="f-birthday"') < page.index('class="actions sticky"')
    default = _selected(page, "f-payment_method")
    assert default and '<option value="">—</option>' not in page[method:page.index("</select>", method)]
    # What a browser sends for a form filled in and submitted once, the defaults left as shown.
    r = ui.post("/members/new", {"name": "首次", "mobile": "13900000111", "store_code": "BJ01", "issue_card": "on",
                                 "payment_method": default})
    assert r.status_code == 302, text(r)
    member = login_api("front_desk").get("/api/v1/members?q=13900000111").json["items"][0]
    assert member["card"]["status"] == "active"
    # The desk's last choice is the next default.
    ui.get("/members/new")
    ui.post("/members/new", {"name": "支付宝", "mobile": "13900000112", "store_code": "BJ01", "issue_card": "on",
                             "payment_method": "alipay"})
    assert _selected(text(ui.get("/members/new")), "f-payment_method") == "alipay"


def test_no_card_fee_means_no_payment_method_to_choose(app, staff, login_api):
    assert login_api("admin").patch("/api/v1/programme", json={"card_fee": "0.00"}).status_code == 200
    ui = ui_login(app, "frontdesk", lang="en")
    page = text(ui.get("/members/new"))
    assert 'name="payment_method"' not in page and "no card fee" in page
    r = ui.post("/members/new", {"name": "免费卡", "mobile": "13900000113", "store_code": "BJ01", "issue_card": "on"})
    assert r.status_code == 302, text(r)
    member = login_api("front_desk").get("/api/v1/members?q=13900000113").json["items"][0]
    assert member["card"]["status"] == "active"
