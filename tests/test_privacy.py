"""Privacy for roles that see masked data (cashier, marketing): no mobile by prefix search, a
member search budget per user, card numbers and QR payloads only for the roles that print
cards, company phones masked like members' mobiles."""
import re
import secrets
import time

import limits.storage.memory
import pytest
import redis
from sqlalchemy import func, select

from tests.conftest import PASSWORD, REDIS_URL, make_app
from tests.test_ui import text, ui_login

# Three members a cashier sees as 158****4567, 158****4567 and 158****0000: the hidden digits differ.
VICTIMS = {"a": "15871234567", "b": "15809874567", "c": "15871230000"}
MEMBER_LINK = re.compile(r'href="/members/(\d+)"')


def _compact(q):
    return re.sub(r"[\s\-]", "", q)


@pytest.fixture
def victims(member_factory, issue_card):
    out = {}
    for key, mobile in VICTIMS.items():
        m = member_factory(name=f"受害人{key}", mobile=mobile)
        out[key] = {**m, "card": issue_card(m["id"]).json}
    return out


class Searcher:
    """A cashier searching alternately through the API and the staff UI, as an attacker would."""

    def __init__(self, api, ui):
        self.api, self.ui, self.count = api, ui, 0

    def ids(self, q):
        """The member ids the search shows, and every text it sent back."""
        self.count += 1
        if self.count % 2:
            r = self.api.get("/api/v1/members", query_string={"q": q, "per_page": 200})
            assert r.status_code == 200, (q, r.json)
            return {m["id"] for m in r.json["items"]}, r.get_data(as_text=True)
        r = self.ui.get("/", query_string={"q": q})
        if r.status_code == 302:  # an exact match goes straight to the member
            return {int(r.location.rsplit("/", 1)[1])}, ""
        assert r.status_code == 200, q
        page = text(r)
        return {int(i) for i in MEMBER_LINK.findall(page)}, page


def _expected(q, victims):
    """Who a masked role may find: by a whole mobile, its last 4 digits, or a whole card code."""
    c = _compact(q)
    found = set()
    for v in victims.values():
        full = c in (v["mobile"], "+86" + v["mobile"], "0086" + v["mobile"])
        if full or c == v["mobile"][-4:] or c in (v["card"]["card_no"], v["card"]["qr_payload"]):
            found.add(v["id"])
    return found


def test_two_hundred_searches_by_a_cashier_learn_no_hidden_digit(app, staff, login_api, victims, monkeypatch):
    monkeypatch.setitem(app.config, "MEMBER_SEARCH_LIMIT", "1000 per minute")  # this test is about matching
    searcher = Searcher(login_api("cashier"), ui_login(app, "cashier"))
    a = victims["a"]
    secrets_of = {v["mobile"] for v in victims.values()} | {v["card"]["card_no"] for v in victims.values()}

    def search(q):
        ids, body = searcher.ids(q)
        assert ids == _expected(q, victims), q
        for secret in secrets_of - {_compact(q)}:  # the UI echoes the query itself, nothing else
            assert secret not in body, (q, secret)
        return ids

    # 1. The issue's attack: extend the visible 158 while the member still appears. Even an attacker
    #    told every digit before the one being tried never sees her appear.
    for length in range(3, 10):
        assert [d for d in "0123456789" if a["id"] in search(a["mobile"][:length] + d)] == [], length
    # 2. Grow the visible last 4 to the left, the same way.
    for length in range(4, 8):
        assert [d for d in "0123456789" if a["id"] in search(d + a["mobile"][-length:])] == [], length
    # 3. Every 1-6 digit run of the victim's number, at every offset (prefixes, infixes, suffixes).
    runs = {a["mobile"][i:i + n] for n in range(1, 7) for i in range(len(a["mobile"]) - n + 1)}
    for run in sorted(runs):
        search(run)
    # 4. Written the ways people write numbers, and prefixes of the card numbers.
    for q in ("+86158", "158 7123", "158-7123-4", "0086158712", "+8615871234"):
        search(q)
    for n in (2, 4, 6, 8, 10, 12, 14, 15):
        search(a["card"]["card_no"][:n])
    # 5. What a cashier may do: the whole number, the last 4, the card.
    for v in victims.values():
        assert search(v["mobile"]) == {v["id"]}
    assert search("4567") == {victims["a"]["id"], victims["b"]["id"]}
    assert search(a["card"]["card_no"]) == search(a["card"]["qr_payload"]) == {a["id"]}
    assert search("15800004567") == set()  # a wrong guess of the whole number finds no one
    while searcher.count < 200:
        search(f"{secrets.randbelow(10 ** 6):0{1 + secrets.randbelow(6)}d}")
    assert searcher.count == 200


def test_marketing_cannot_search_by_prefix_either(login_api, victims):
    marketing = login_api("marketing")
    for q in ("15871", "1587123", "158712345", "87123"):
        assert marketing.get("/api/v1/members", query_string={"q": q}).json["total"] == 0, q
    found = marketing.get("/api/v1/members", query_string={"q": VICTIMS["a"]}).json["items"]
    assert [(m["id"], m["mobile"]) for m in found] == [(victims["a"]["id"], "158****4567")]


def test_desk_still_finds_by_prefix(app, staff, login_api, victims):
    def ids(api, q):
        return {m["id"] for m in api.get("/api/v1/members", query_string={"q": q}).json["items"]}
    a, b, c = (victims[k]["id"] for k in "abc")
    for role in ("front_desk", "manager", "admin"):
        api = login_api(role)
        assert ids(api, "158") == {a, b, c}, role
        assert ids(api, "1587123") == {a, c}, role
        assert ids(api, "158098") == {b}, role
    page = text(ui_login(app, "frontdesk").get("/?q=15871"))
    assert f"/members/{a}" in page and f"/members/{c}" in page and f"/members/{b}" not in page
    assert "15871234567" in page  # the desk sees whole numbers


def _age_limits(monkeypatch, seconds):
    """Move the limiter storage's clock (limits' memory storage keeps time with time.time())."""
    real = time.time

    class Later:
        @staticmethod
        def time():
            return real() + seconds
    monkeypatch.setattr(limits.storage.memory, "time", Later)


def test_search_budget_per_user_over_api_and_ui_then_429_and_it_resets(app, staff, login_api, victims,
                                                                      monkeypatch):
    from crm.core.audit import AuditEntry
    from crm.extensions import db
    monkeypatch.setitem(app.config, "MEMBER_SEARCH_LIMIT", "5 per minute")
    cashier = login_api("cashier")
    ui = ui_login(app, "cashier", lang="en")
    card = victims["a"]["card"]
    assert cashier.get("/api/v1/members?q=王").status_code == 200                               # 1
    for _again in range(3):  # the same question again learns nothing and costs nothing,
        assert cashier.get("/api/v1/members?q=4567").status_code == 200                       # 2
    assert ui.get("/?q=4567").status_code == 200  # in the UI too
    assert ui.get("/", query_string={"q": VICTIMS["b"]}).status_code == 302                     # 3
    assert cashier.get("/api/v1/members", query_string={"q": VICTIMS["c"]}).status_code == 200  # 4
    assert ui.get("/?q=1234").status_code == 200                                              # 5
    # Scanning cards never counts: a cashier scans all shift.
    for _scan in range(10):
        assert cashier.get("/api/v1/members", query_string={"q": card["qr_payload"]}).json["total"] == 1

    over = cashier.get("/api/v1/members", query_string={"q": VICTIMS["a"]})
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    page = ui.get("/?q=0000")
    assert page.status_code == 429 and "Too many member searches" in text(page)
    assert "/members/" + str(victims["c"]["id"]) not in text(page)
    for _retry in range(3):
        assert cashier.get("/api/v1/members", query_string={"q": f"1580987{_retry}"}).status_code == 429
    # Still free: a scanned card, at the search box and at the till.
    assert ui.get("/", query_string={"q": card["qr_payload"]}).status_code == 302
    assert cashier.post("/api/v1/cards/scan", json={"code": card["qr_payload"]}).status_code == 200
    # The budget is each user's own.
    assert login_api("marketing").get("/api/v1/members", query_string={"q": "0000"}).status_code == 200
    with app.app_context():
        refusals = db.session.scalar(select(func.count()).select_from(AuditEntry)
                                     .where(AuditEntry.action == "member.search_rate_limited"))
    assert refusals == 1  # one row per window, however often a script retries

    _age_limits(monkeypatch, 61)  # the minute has passed
    again = cashier.get("/api/v1/members", query_string={"q": VICTIMS["a"]})
    assert again.status_code == 200 and again.json["items"][0]["id"] == victims["a"]["id"]


def test_a_mobile_typed_at_the_till_is_a_search(app, staff, catalogue, victims, monkeypatch):
    monkeypatch.setitem(app.config, "MEMBER_SEARCH_LIMIT", "2 per minute")
    ui = ui_login(app, "cashier", lang="en")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]

    def scan(code):
        return ui.post("/till", {"card_code": code, "store_code": "BJ01", "items": "", "till_token": token})
    for _same_guest in range(3):  # scan, quote, close: the same number counts once
        assert "受害人a" in text(scan(VICTIMS["a"]))
    assert "受害人b" in text(scan(VICTIMS["b"]))
    refused = scan(VICTIMS["c"])
    assert refused.status_code == 422 and "Too many member searches" in text(refused)
    assert "受害人c" not in text(refused)
    assert "受害人c" in text(scan(victims["c"]["card"]["qr_payload"]))  # a card still works


def _nullable(prop):
    types = prop.get("type")
    return (bool(prop.get("nullable")) or (isinstance(types, list) and "null" in types)
            or any(alt.get("type") == "null" for alt in prop.get("anyOf", [])))


def test_card_number_and_payload_only_for_roles_that_print_cards(app, staff, login_api, checkout, catalogue,
                                                                 victims):
    desk = login_api("front_desk")
    member_id, old = victims["a"]["id"], victims["a"]["card"]
    assert desk.post(f"/api/v1/cards/{old['card_no']}/lost").status_code == 200
    new = desk.post(f"/api/v1/cards/{old['card_no']}/replace", key="rep-privacy",
                    json={"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash"}).json
    bill = checkout([("TEA", 1)], card_code=new["qr_payload"])
    assert bill.status_code == 201
    secrets_ = (old["card_no"], new["card_no"], old["qr_payload"], new["qr_payload"])

    def bodies(role):
        api = login_api(role)
        calls = {
            "member": api.get(f"/api/v1/members/{member_id}"),
            "search": api.get("/api/v1/members", query_string={"q": VICTIMS["a"]}),
            "cards": api.get(f"/api/v1/members/{member_id}/cards"),
            "card": api.get(f"/api/v1/cards/{new['card_no']}"),
        }
        if role != "marketing":  # the till roles
            calls["scan"] = api.post("/api/v1/cards/scan", json={"code": new["qr_payload"]})
            calls["bill"] = api.get(f"/api/v1/checkouts/{bill.json['id']}")
            calls["bills"] = api.get("/api/v1/checkouts", query_string={"member_id": member_id})
        for name, r in calls.items():
            assert r.status_code == 200, (role, name, r.json)
        return calls

    for role in ("cashier", "marketing"):
        calls = bodies(role)
        for name, r in calls.items():
            for secret in secrets_:
                assert secret not in r.get_data(as_text=True), (role, name)
        assert calls["member"].json["card"]["card_no"] == "86**********" + new["card_no"][-4:]
        listed = {c["card_no"]: c for c in calls["cards"].json}
        assert set(listed) == {"86**********" + old["card_no"][-4:], "86**********" + new["card_no"][-4:]}
        assert all(c["qr_payload"] is None for c in listed.values())
        assert calls["card"].json["replaces"] == "86**********" + old["card_no"][-4:]
    cashier = bodies("cashier")
    assert cashier["scan"].json["card_no"] == "86**********" + new["card_no"][-4:]
    assert bill.json["card_no"] == cashier["bill"].json["card_no"] == "86**********" + new["card_no"][-4:]

    for role in ("front_desk", "manager", "admin"):
        calls = bodies(role)
        assert calls["member"].json["card"]["card_no"] == new["card_no"]
        assert calls["card"].json["qr_payload"] == new["qr_payload"]
        assert calls["card"].json["replaces"] == old["card_no"]
        assert calls["bill"].json["card_no"] == new["card_no"]

    doc = desk.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert _nullable(doc["Card"]["properties"]["qr_payload"]) and _nullable(doc["Card"]["properties"]["replaces"])
    assert "masked" in doc["Card"]["properties"]["card_no"]["description"]


def test_member_pages_show_cashiers_the_card_masked(app, staff, victims):
    card = victims["a"]["card"]
    member = f"/members/{victims['a']['id']}"
    for username in ("cashier", "marketing"):
        ui = ui_login(app, username)
        for page in (ui.get(member + "?new=1"), ui.get("/?q=4567")):
            body = text(page)
            assert card["card_no"] not in body and card["qr_payload"] not in body, username
            assert "86**********" + card["card_no"][-4:] in body, username
            assert "/print" not in body, username
    desk = text(ui_login(app, "frontdesk").get(member + "?new=1"))
    assert card["card_no"] in desk and f"/cards/{card['card_no']}/print" in desk


def test_company_contact_phones_are_masked_like_mobiles(login_api):
    desk = login_api("front_desk")
    mobile = desk.post("/api/v1/companies", json={"name": "会展公司", "contact_phone": "139 1234 5678"}).json
    landline = desk.post("/api/v1/companies", json={"name": "旅行社", "contact_phone": "010-6512 3456"}).json
    assert mobile["contact_phone"] == "139 1234 5678"
    shown = {"cashier": ("139****5678", "****3456"), "marketing": ("139****5678", "****3456"),
             "front_desk": ("139 1234 5678", "010-6512 3456"), "manager": ("139 1234 5678", "010-6512 3456")}
    for role, (m, land) in shown.items():
        api = login_api(role)
        assert api.get(f"/api/v1/companies/{mobile['id']}").json["contact_phone"] == m, role
        listed = {c["id"]: c["contact_phone"] for c in api.get("/api/v1/companies").json["items"]}
        assert listed == {mobile["id"]: m, landline["id"]: land}, role


def test_search_budget_is_shared_by_workers_through_redis(app, staff, redis_prefix):
    from crm.extensions import db
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    workers = [make_app(url, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix,
                        MEMBER_SEARCH_LIMIT="4 per minute") for _ in (1, 2)]
    try:
        clients = [w.test_client() for w in workers]
        token = clients[0].post("/api/v1/auth/token", json={"username": "cashier", "password": PASSWORD}).json["token"]
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(4):
            r = clients[n % 2].get("/api/v1/members", query_string={"q": f"100{n}"}, headers=headers)
            assert r.status_code == 200
        for client in clients:
            r = client.get("/api/v1/members", query_string={"q": "2000"}, headers=headers)
            assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
        assert any(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{redis_prefix}*member-search*"))
    finally:
        for w in workers:
            with w.app_context():
                db.engine.dispose()
