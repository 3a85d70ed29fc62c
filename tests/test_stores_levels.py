"""Stores, member levels and programme rules (admin)."""


def test_admin_creates_restaurant_and_hotel(login_api):
    admin = login_api("admin")
    r = admin.post("/api/v1/stores", json={"code": "sh01", "name": "上海店", "kind": "restaurant"})
    assert r.status_code == 201 and r.json["code"] == "SH01" and r.json["timezone"] == "Asia/Shanghai"
    r = admin.post("/api/v1/stores", json={"code": "HT02", "name": "三亚酒店", "kind": "hotel", "rooms": 120,
                                           "timezone": "Asia/Shanghai"})
    assert r.status_code == 201 and r.json["rooms"] == 120
    assert {s["code"] for s in login_api("cashier").get("/api/v1/stores").json} >= {"SH01", "HT02", "BJ01"}


def test_store_rules(login_api):
    admin = login_api("admin")
    cases = [
        ({"code": "H3", "name": "h", "kind": "hotel"}, "rooms_required"),
        ({"code": "R3", "name": "r", "kind": "restaurant", "rooms": 10}, "rooms_not_allowed"),
        ({"code": "R4", "name": "r", "kind": "restaurant", "timezone": "Mars/Base"}, "invalid_timezone"),
        ({"code": "R5", "name": "r", "kind": "spa"}, "validation_error"),
        ({"code": "BJ01", "name": "dup", "kind": "restaurant"}, "store_code_taken"),
        ({"code": "a b", "name": "x", "kind": "restaurant"}, "validation_error"),
    ]
    for body, code in cases:
        r = admin.post("/api/v1/stores", json=body)
        assert r.status_code in (409, 422) and r.json["error"]["code"] == code, body
    r = admin.patch("/api/v1/stores/HT01", json={"rooms": 210})
    assert r.status_code == 200 and r.json["rooms"] == 210
    assert admin.patch("/api/v1/stores/BJ01", json={"rooms": 10}).json["error"]["code"] == "rooms_not_allowed"


def test_levels_have_an_entry_level_and_admin_adds_tiers(login_api):
    admin = login_api("admin")
    levels = admin.get("/api/v1/levels").json
    assert levels[0]["code"] == "standard" and levels[0]["rank"] == 0 and levels[0]["points_multiplier"] == "1.00"
    r = admin.post("/api/v1/levels", json={"code": "silver", "name": "银卡", "rank": 1, "points_multiplier": "1.2",
                                           "upgrade_spend": "5000.00", "upgrade_topup": "5000"})
    assert r.status_code == 201
    assert (r.json["points_multiplier"], r.json["upgrade_spend"]) == ("1.20", "5000.00")
    clash = admin.post("/api/v1/levels", json={"code": "x", "name": "x", "rank": 1})
    assert clash.json["error"]["code"] == "rank_taken"
    assert admin.post("/api/v1/levels", json={"code": "y", "name": "y", "rank": 5,
                                              "points_multiplier": "0"}).status_code == 422
    r = admin.patch("/api/v1/levels/silver", json={"points_multiplier": "1.30"})
    assert r.json["points_multiplier"] == "1.30"
    assert admin.patch("/api/v1/levels/nope", json={"name": "n"}).status_code == 404


def test_programme_defaults_match_the_spec_and_admin_can_change_them(login_api):
    assert login_api("cashier").get("/api/v1/programme").json == {
        "card_fee": "20.00", "replacement_fee": "20.00", "points_earn_unit": "10.00", "points_per_unit": 1,
        "point_value": "1.00", "points_expiry_months": 12, "level_window_months": 12,
        "wallet_spend_mode": "proportional", "wallet_pin_threshold": "200.00", "points_on_wallet_bonus": False,
        "draw_min_spend": "100.00", "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
        # referrals (issue 15): off until an admin chooses a reward
        "referral_reward": "none", "referral_referrer_points": 0, "referral_referee_points": 0,
        "referral_referrer_coupon": "", "referral_referee_coupon": "", "referral_min_spend": "0.00",
        "referral_yearly_cap": 10}
    admin = login_api("admin")
    assert admin.patch("/api/v1/programme", json={"replacement_fee": "10.00"}).json["replacement_fee"] == "10.00"
    assert admin.patch("/api/v1/programme", json={"card_fee": "-1"}).status_code == 422
    assert admin.patch("/api/v1/programme", json={"card_fee": "1.234"}).status_code == 422
    assert admin.patch("/api/v1/programme", json={"card_fee": "99999"}).status_code == 422
    assert admin.get("/api/v1/programme").json["card_fee"] == "20.00"


def test_points_rules_are_validated(login_api):
    admin = login_api("admin")
    for body in ({"points_earn_unit": "0.00"}, {"points_per_unit": -1}, {"points_expiry_months": 121},
                 {"point_value": "0"}, {"level_window_months": 0}, {"points_per_unit": "many"}):
        assert admin.patch("/api/v1/programme", json=body).status_code == 422, body
    assert admin.patch("/api/v1/programme", json={"points_expiry_months": 0}).json["points_expiry_months"] == 0
