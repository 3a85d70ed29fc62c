"""Catalogue and promotions: API rules and the manager's pages."""
from tests.test_ui import text, ui_login


def test_item_rules(catalogue, login_api):
    m = catalogue
    assert m.post("/api/v1/items", json={"sku": "salmon", "name": "x", "category": "c",
                                         "list_price": "1.00"}).json["error"]["code"] == "sku_taken"
    bad = [({"member_price": "120.00"}, "member_price_above_list"), ({"list_price": "-1"}, "validation_error"),
           ({"list_price": "1.005"}, "validation_error"), ({"member_prices": {"nolevel": "1.00"}}, "unknown_level"),
           ({"valid_from": "2026-02-01", "valid_to": "2026-01-01"}, "invalid_validity"),
           ({"store_codes": ["NOPE"]}, "unknown_store")]
    for extra, code in bad:
        body = {"sku": "NEW1", "name": "新菜", "category": "c", "list_price": "100.00", **extra}
        r = m.post("/api/v1/items", json=body)
        assert r.status_code == 422 and r.json["error"]["code"] == code, (extra, r.json)
    assert m.get("/api/v1/items/NEW1").status_code == 404
    assert login_api("cashier").post("/api/v1/items", json={"sku": "X", "name": "x", "category": "c",
                                                            "list_price": "1.00"}).status_code == 403
    listing = login_api("cashier").get("/api/v1/items?q=三文").json
    assert [i["sku"] for i in listing["items"]] == ["SALMON"]


def test_items_off_sale_out_of_dates_or_other_stores_cannot_be_sold(catalogue, checkout):
    catalogue.post("/api/v1/items", json={"sku": "CRAB", "name": "大闸蟹", "category": "seafood",
                                          "list_price": "88.00", "valid_from": "2020-09-01", "valid_to": "2020-11-30"})
    catalogue.post("/api/v1/items", json={"sku": "DUCK", "name": "烤鸭", "category": "roast", "list_price": "98.00",
                                          "store_codes": ["BJ02"]})
    catalogue.patch("/api/v1/items/TEA", json={"active": False})
    for sku in ("CRAB", "DUCK", "TEA"):
        r = checkout([(sku, 1)])
        assert r.status_code == 422 and r.json["error"]["code"] == "item_unavailable", sku
    assert checkout([("DUCK", 1)], store_code="BJ02").status_code == 201


def test_manager_pages_create_and_edit_items_and_promotions(app, staff, catalogue, login_api, store_today):
    ui = ui_login(app, "manager")
    assert "SALMON" in text(ui.get("/catalog/"))
    ui.get("/catalog/items/new")
    r = ui.post("/catalog/items/new", {"sku": "OYSTER", "name": "生蚝", "category": "seafood", "list_price": "18",
                                       "member_price": "25", "active": "on"})
    assert r.status_code == 422 and 'id="e-member_price"' in text(r) and 'value="生蚝"' in text(r)
    r = ui.post("/catalog/items/new", {"sku": "OYSTER", "name": "生蚝", "category": "seafood", "list_price": "18",
                                       "member_price": "15", "price_standard": "14.50", "active": "on"})
    assert r.status_code == 302
    item = login_api("cashier").get("/api/v1/items/OYSTER").json
    assert (item["member_price"], item["member_prices"]) == ("15.00", {"standard": "14.50"})
    page = ui.get("/catalog/items/OYSTER")
    assert 'value="14.50"' in text(page)
    r = ui.post("/catalog/items/OYSTER", {"name": "生蚝(只)", "category": "seafood", "list_price": "20.00",
                                          "member_price": "15.00", "price_standard": "14.50"})
    assert r.status_code == 302
    item = login_api("cashier").get("/api/v1/items/OYSTER").json
    assert (item["name"], item["list_price"], item["active"]) == ("生蚝(只)", "20.00", False)
    ui.get("/catalog/promotions")
    r = ui.post("/catalog/promotions", {"code": "VAL", "name": "情人节", "rate": "77", "categories": "seafood",
                                        "starts_on": store_today, "ends_on": store_today, "auto_apply": "on"})
    assert r.status_code == 302
    promo = login_api("cashier").get("/api/v1/promotions/VAL").json
    assert (promo["rate"], promo["categories"], promo["auto_apply"]) == ("77.00", ["seafood"], True)
    r = ui.post("/catalog/promotions", {"code": "BAD", "name": "x", "rate": "120", "starts_on": store_today,
                                        "ends_on": store_today})
    assert r.status_code == 422 and 'id="e-rate"' in text(r)


def test_a_rate_typed_as_the_zhe_number_is_refused(catalogue, store_today):
    """'7.7' for 7.7折 would charge 7.7% of the price: rates under 10 are refused."""
    r = catalogue.post("/api/v1/promotions", json={"code": "OOPS", "name": "x", "rate": "7.7",
                                                   "starts_on": store_today, "ends_on": store_today})
    assert r.status_code == 422 and "rate" in r.json["error"]["details"]["fields"]


def test_the_catalogue_shows_category_names_in_the_page_language_not_their_keys(app, staff, catalogue):
    from tests.test_ui import text, ui_login
    page = text(ui_login(app, staff["manager"], lang="en").get("/catalog/"))
    assert "<td>Drinks</td>" in page and "<td>Sashimi</td>" in page and "<td>drinks</td>" not in page
    zh = text(ui_login(app, staff["manager"], lang="zh_CN").get("/catalog/"))
    assert "<td>饮品</td>" in zh, \
        [line for line in zh.splitlines() if "TEA" in line]
