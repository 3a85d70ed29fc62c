"""Members: registration rules, search, edit, masking."""
import pytest


def test_register_returns_the_member_with_normalised_fields(desk):
    r = desk.post("/api/v1/members", json={
        "name": "张三", "mobile": "+86 138-0013-8000", "birthday": "1988-02-29", "gender": "male",
        "email": "zs@example.com", "segment": "business_fit", "company": "北京中联科技", "store_code": "bj01",
        "tags": ["VIP", "VIP", "海鲜"], "marketing_consent": {"sms": True, "email": False}, "sales_rep": "孙"})
    assert r.status_code == 201, r.json
    m = r.json
    assert m["mobile"] == "13800138000" and m["birthday"] == "1988-02-29" and m["store_code"] == "BJ01"
    assert m["level"]["code"] == "standard" and m["company"] == "北京中联科技" and m["tags"] == ["VIP", "海鲜"]
    assert m["marketing_consent"]["sms"] is True and m["marketing_consent"]["sms_at"].endswith("+00:00")
    assert m["marketing_consent"]["email"] is False and m["marketing_consent"]["email_at"] is None
    assert m["card"] is None


@pytest.mark.parametrize("mobile, stored", [
    ("13800138000", "13800138000"), ("19912345678", "19912345678"), ("+8613800138000", "13800138000"),
    ("+852 9123 4567", "+85291234567"), ("0085291234567", "+85291234567"), ("+1 650 253 0000", "+16502530000"),
])
def test_valid_mobiles(desk, mobile, stored):
    r = desk.post("/api/v1/members", json={"name": "x", "mobile": mobile, "store_code": "BJ01"})
    assert r.status_code == 201 and r.json["mobile"] == stored


@pytest.mark.parametrize("mobile", ["1380013800", "12800138000", "138001380001", "+852 123", "abc", "", "91234567"])
def test_invalid_mobiles_are_rejected_and_nothing_saved(desk, mobile):
    r = desk.post("/api/v1/members", json={"name": "x", "mobile": mobile, "store_code": "BJ01"})
    assert r.status_code == 422 and "mobile" in r.json["error"]["details"]["fields"]
    assert desk.get("/api/v1/members?q=x").json["total"] == 0


def test_duplicate_mobile_is_409_mobile_taken_in_any_spelling(desk, member_factory):
    member_factory(mobile="13800138000")
    r = desk.post("/api/v1/members", json={"name": "y", "mobile": "+86 13800138000", "store_code": "BJ01"})
    assert r.status_code == 409 and r.json["error"]["code"] == "mobile_taken"


@pytest.mark.parametrize("birthday, ok", [
    ("02-29", True), ("1992-02-29", True), ("12-31", True), ("--03-15", True),
    ("1990-02-29", False), ("02-30", False), ("13-01", False), ("1850-01-01", False), ("3000-01-01", False),
    ("tomorrow", False),
])
def test_birthday_rules(desk, birthday, ok):
    r = desk.post("/api/v1/members", json={"name": "b", "mobile": "13900001111", "store_code": "BJ01",
                                           "birthday": birthday})
    assert (r.status_code == 201) is ok, r.json


def test_unknown_store_segment_and_gender_are_422(desk):
    for extra in ({"store_code": "NOPE"}, {"segment": "vip"}, {"gender": "x"}, {"email": "bad"}):
        body = {"name": "c", "mobile": "13900002222", "store_code": "BJ01", **extra}
        r = desk.post("/api/v1/members", json=body)
        assert r.status_code == 422, extra
    assert desk.get("/api/v1/members?q=13900002222").json["total"] == 0


def test_search_by_mobile_last4_prefix_name_and_card(desk, member_factory, issue_card):
    a = member_factory(name="王小明", mobile="13811112345")
    b = member_factory(name="王大明", mobile="13922222345")
    c = member_factory(name="Li Lei", mobile="13733334444")
    card = issue_card(a["id"]).json

    def ids(q):
        return [m["id"] for m in desk.get("/api/v1/members", query_string={"q": q}).json["items"]]
    assert ids("13811112345") == [a["id"]]
    assert ids("138 1111 2345") == [a["id"]]
    assert sorted(ids("2345")) == sorted([a["id"], b["id"]])
    assert ids("1392222") == [b["id"]]
    assert sorted(ids("王")) == sorted([a["id"], b["id"]])
    assert ids("li") == [c["id"]]
    assert ids(card["card_no"]) == [a["id"]]
    assert ids(card["qr_payload"]) == [a["id"]]
    assert ids(card["card_no"][:-1] + str((int(card["card_no"][-1]) + 1) % 10)) == []  # typo
    assert ids("100%") == []


def test_list_is_paginated(desk, member_factory):
    for _ in range(5):
        member_factory(name="张")
    page = desk.get("/api/v1/members?q=张&page=2&per_page=2").json
    assert (page["page"], page["per_page"], page["total"], len(page["items"])) == (2, 2, 5, 2)
    assert desk.get("/api/v1/members?per_page=500").status_code == 422


def test_mobile_is_masked_for_cashier_and_marketing(login_api, member_factory):
    m = member_factory(mobile="13800138000")
    for role, shown in (("cashier", "138****8000"), ("marketing", "138****8000"),
                        ("front_desk", "13800138000"), ("manager", "13800138000")):
        api = login_api(role)
        assert api.get(f"/api/v1/members/{m['id']}").json["mobile"] == shown, role
        assert api.get("/api/v1/members?q=8000").json["items"][0]["mobile"] == shown, role


def test_edit_changes_only_sent_fields_and_records_consent_time(desk, member_factory):
    m = member_factory(name="旧名", birthday="05-01", marketing_consent={"sms": True})
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"name": "新名", "marketing_consent": {"email": True},
                                                       "tags": ["常客"]})
    assert r.status_code == 200
    assert r.json["name"] == "新名" and r.json["birthday"] == "05-01" and r.json["tags"] == ["常客"]
    assert r.json["marketing_consent"]["sms"] is True and r.json["marketing_consent"]["email"] is True
    assert r.json["marketing_consent"]["sms_at"] == m["marketing_consent"]["sms_at"]  # untouched channel
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"birthday": None, "tags": []})
    assert r.json["birthday"] is None and r.json["tags"] == []


def test_edit_to_a_taken_mobile_is_409_and_changes_nothing(desk, member_factory):
    a, b = member_factory(), member_factory()
    r = desk.patch(f"/api/v1/members/{a['id']}", json={"mobile": b["mobile"], "name": "changed"})
    assert r.status_code == 409 and r.json["error"]["code"] == "mobile_taken"
    assert desk.get(f"/api/v1/members/{a['id']}").json["name"] == a["name"]


def test_only_managers_change_levels(login_api, member_factory):
    admin = login_api("admin")
    assert admin.post("/api/v1/levels", json={"code": "gold", "name": "金卡", "rank": 2,
                                               "points_multiplier": "1.50"}).status_code == 201
    m = member_factory()
    r = login_api("front_desk").patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"})
    assert r.status_code == 403 and r.json["error"]["code"] == "level_change_forbidden"
    r = login_api("manager").patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"})
    assert r.status_code == 200 and r.json["level"] == {"code": "gold", "name": "金卡"}
    r = login_api("manager").patch(f"/api/v1/members/{m['id']}", json={"level_code": "platinum"})
    assert r.status_code == 422


def test_corporate_accounts(desk, member_factory):
    r = desk.post("/api/v1/companies", json={"name": "华夏会展", "account_class": "conference",
                                             "contact_person": "周", "negotiated_discount": "15.00", "sales_rep": "孙"})
    assert r.status_code == 201 and r.json["negotiated_discount"] == "15.00"
    assert desk.post("/api/v1/companies", json={"name": "华夏会展"}).status_code == 409
    assert desk.post("/api/v1/companies", json={"name": "X", "account_class": "vip"}).status_code == 422
    assert desk.post("/api/v1/companies", json={"name": "Y", "negotiated_discount": "120"}).status_code == 422
    m = member_factory(company="华夏会展")
    assert m["company"] == "华夏会展"
    listing = desk.get("/api/v1/companies?q=会展").json
    assert listing["total"] == 1
    # An unknown company typed at registration becomes a potential account.
    member_factory(company="新公司")
    new = desk.get("/api/v1/companies?q=新公司").json["items"][0]
    assert new["account_class"] == "potential"


def test_concurrent_registrations_of_one_mobile_make_one_member(app, desk):
    import threading
    results, barrier = [], threading.Barrier(10)

    def call(i):
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/members", json={"name": f"n{i}", "mobile": "13512345678", "store_code": "BJ01"},
                        headers={"Authorization": f"Bearer {desk.token}"})
        results.append(r.status_code)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [201] + [409] * 9
    assert desk.get("/api/v1/members?q=13512345678").json["total"] == 1
