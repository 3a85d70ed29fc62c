"""The admin's programme page: rules and bonus tiers, with errors beside their fields."""
import re

from tests.test_ui import text, ui_login


def test_admin_changes_rules_and_sees_errors_beside_fields(app, staff, login_api):
    ui = ui_login(app, staff["admin"], lang="en")
    page = text(ui.get("/admin/programme"))
    assert 'value="20.00"' in page and 'value="21:00"' in page  # the defaults (docs/rules.md)
    r = ui.post("/admin/programme", {"card_fee": "abc", "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
                                     "wallet_spend_mode": "proportional"})
    assert r.status_code == 422 and re.search(r'id="e-card_fee">[^<]+<', text(r))
    r = ui.post("/admin/programme", {"card_fee": "30.00", "quiet_hours_start": "22:30", "quiet_hours_end": "07:30",
                                     "wallet_spend_mode": "principal_first", "points_on_wallet_bonus": "on"})
    assert r.status_code == 302
    rules = login_api("manager").get("/api/v1/programme").json
    assert (rules["card_fee"], rules["quiet_hours_start"], rules["wallet_spend_mode"],
            rules["points_on_wallet_bonus"]) == ("30.00", "22:30", "principal_first", True)
    r = ui.post("/admin/programme", {"quiet_hours_start": "24:00"})
    assert r.status_code == 422 and "Use a time like 21:00." in text(r)


def test_admin_adds_and_retires_bonus_tiers(app, staff, login_api):
    ui = ui_login(app, staff["admin"], lang="en")
    ui.get("/admin/programme")
    r = ui.post("/admin/programme/tiers", {"min_amount": "20000.00", "bonus": "3500.00", "valid_from": "2026-12-01",
                                           "valid_to": "2026-11-01", "active": "on"})
    assert r.status_code == 422 and "The tier ends before it starts." in text(r)
    r = ui.post("/admin/programme/tiers", {"min_amount": "20000.00", "bonus": "3500.00", "active": "on"})
    assert r.status_code == 302
    tiers = login_api("manager").get("/api/v1/wallet/bonus-tiers").json
    assert ("20000.00", "3500.00") in [(t["min_amount"], t["bonus"]) for t in tiers]
    tier_id = next(t["id"] for t in tiers if t["min_amount"] == "20000.00")
    ui.get("/admin/programme")
    assert ui.post(f"/admin/programme/tiers/{tier_id}/active", {}).status_code == 302
    tiers = login_api("manager").get("/api/v1/wallet/bonus-tiers").json
    assert next(t for t in tiers if t["id"] == tier_id)["active"] is False


def test_only_admins_see_the_programme_tab(app, staff):
    assert "/admin/programme" in text(ui_login(app, staff["admin"]).get("/"))
    assert "/admin/programme" not in text(ui_login(app, staff["manager"]).get("/"))


def test_admin_manages_staff_accounts(app, staff, client):
    from tests.conftest import PASSWORD
    ui = ui_login(app, staff["admin"], lang="en")
    ui.get("/admin/staff/")
    r = ui.post("/admin/staff/", {"username": "x y", "role": "cashier", "password": PASSWORD})
    assert r.status_code == 422 and re.search(r'id="e-username">[^<]+<', text(r))
    r = ui.post("/admin/staff/", {"username": "newcashier", "name": "新收银", "role": "cashier",
                                  "store_code": "BJ02", "password": PASSWORD})
    assert r.status_code == 302
    listing = text(ui.get("/admin/staff/"))
    assert "newcashier" in listing and "海淀店" in listing
    staff_id = re.search(r'/admin/staff/(\d+)">newcashier', listing)[1]
    assert client.post("/api/v1/auth/token", json={"username": "newcashier", "password": PASSWORD}).status_code == 200
    ui.get(f"/admin/staff/{staff_id}")
    r = ui.post(f"/admin/staff/{staff_id}", {"name": "新收银", "role": "cashier", "store_code": "BJ02",
                                             "password": "a-new-pass-1"})  # unticked: deactivated too
    assert r.status_code == 302
    refused = client.post("/api/v1/auth/token", json={"username": "newcashier", "password": "a-new-pass-1"})
    assert refused.status_code == 401


def test_an_admin_cannot_lock_themselves_out(app, staff, login_api):
    admin = login_api("admin")
    me = admin.get("/api/v1/auth/me").json
    r = admin.patch(f"/api/v1/staff/{me['id']}", json={"active": False})
    assert r.status_code == 409 and r.json["error"]["code"] == "own_account"
    r = admin.patch(f"/api/v1/staff/{me['id']}", json={"role": "cashier"})
    assert r.status_code == 409
    assert admin.patch(f"/api/v1/staff/{me['id']}", json={"name": "管理员"}).status_code == 200


def test_admin_adds_and_closes_stores(app, staff, login_api):
    ui = ui_login(app, staff["admin"], lang="en")
    ui.get("/admin/stores/")
    r = ui.post("/admin/stores/", {"code": "HT02", "name": "新酒店", "kind": "hotel", "timezone": "Asia/Shanghai"})
    assert r.status_code == 422 and "A hotel needs its number of rooms." in text(r)
    r = ui.post("/admin/stores/", {"code": "HT02", "name": "新酒店", "kind": "hotel", "rooms": "120",
                                   "timezone": "Asia/Shanghai"})
    assert r.status_code == 302
    assert "新酒店" in text(ui.get("/admin/stores/"))
    ui.get("/admin/stores/HT02")
    r = ui.post("/admin/stores/HT02", {"name": "新酒店", "rooms": "150", "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and re.search(r'id="e-timezone">Unknown time zone', text(r))
    r = ui.post("/admin/stores/HT02", {"name": "新酒店", "rooms": "150", "timezone": "Asia/Shanghai"})  # unticked
    assert r.status_code == 302
    store = next(s for s in login_api("admin").get("/api/v1/stores").json if s["code"] == "HT02")
    assert (store["rooms"], store["active"]) == (150, False)


def test_admin_adds_and_changes_levels(app, staff, login_api):
    ui = ui_login(app, staff["admin"], lang="en")
    ui.get("/admin/levels/")
    r = ui.post("/admin/levels/", {"code": "gold", "name": "金卡会员", "rank": "0", "points_multiplier": "1.50"})
    assert r.status_code == 409 or r.status_code == 422  # rank 0 is the entry level's
    r = ui.post("/admin/levels/", {"code": "gold", "name": "金卡会员", "rank": "2", "points_multiplier": "1.50",
                                   "upgrade_spend": "20000.00", "upgrade_topup": ""})
    assert r.status_code == 302
    ui.get("/admin/levels/gold")
    r = ui.post("/admin/levels/gold", {"name": "金卡会员", "rank": "2", "points_multiplier": "0",
                                       "upgrade_spend": "20000.00"})
    assert r.status_code == 422 and re.search(r'id="e-points_multiplier">', text(r))
    r = ui.post("/admin/levels/gold", {"name": "金卡", "rank": "2", "points_multiplier": "2.00",
                                       "upgrade_spend": "", "upgrade_topup": "10000.00"})
    assert r.status_code == 302
    gold = next(lv for lv in login_api("admin").get("/api/v1/levels").json if lv["code"] == "gold")
    assert (gold["name"], gold["points_multiplier"], gold["upgrade_spend"], gold["upgrade_topup"]) == (
        "金卡", "2.00", None, "10000.00")


def test_a_password_reset_ends_the_users_open_sessions(app, staff, login_api):
    cashier_ui = ui_login(app, staff["cashier"])
    assert cashier_ui.get("/till").status_code == 200
    cashier_id = next(s["id"] for s in login_api("admin").get("/api/v1/staff").json["items"]
                      if s["username"] == staff["cashier"])
    assert login_api("admin").patch(f"/api/v1/staff/{cashier_id}", json={"password": "a-new-pass-1"}).status_code == 200
    r = cashier_ui.get("/till")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
