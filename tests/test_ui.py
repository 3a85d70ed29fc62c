"""The front-desk UI in the browser's terms: forms, CSRF, language, the three-screen sign-up."""
import re

from tests.conftest import PASSWORD

CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


FORM = re.compile(rb'<form\b([^>]*)>(.*?)</form>', re.S)
ACTION = re.compile(rb'action="([^"]*)"')
FORM_TOKEN = re.compile(rb'name="form_token" value="([0-9a-f]{32})"')


class UiClient:
    """A logged-in browser: keeps cookies, the current CSRF token and each form's one-time
    token (a form that moves money carries one; sending the form uses it up)."""

    def __init__(self, app):
        self.client = app.test_client()
        self.csrf = None
        self.form_tokens = {}  # form action path -> its one-time token on the last page showing it

    def _remember_csrf(self, resp, url=""):
        match = CSRF.search(resp.data)
        if match:
            self.csrf = match[1].decode()
        for attrs, body in FORM.findall(resp.data):
            token = FORM_TOKEN.search(body)
            if token:
                action = ACTION.search(attrs)
                path = action[1].decode().replace("&amp;", "&") if action else url.split("?")[0]
                self.form_tokens[path] = token[1].decode()
        return resp

    def get(self, url, **kw):
        return self._remember_csrf(self.client.get(url, **kw), url)

    def post(self, url, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf)
        if "form_token" not in data and url in self.form_tokens:
            data["form_token"] = self.form_tokens[url]
        return self._remember_csrf(self.client.post(url, data=data, **kw), url)

    def open(self, url, method="GET", **kw):
        return self.client.open(url, method=method, **kw)


def ui_login(app, username, password=PASSWORD, lang=None):
    ui = UiClient(app)
    if lang:
        ui.get(f"/lang/{lang}")
    ui.get("/login")
    r = ui.post("/login", {"username": username, "password": password})
    assert r.status_code == 302, r.data[:500]
    ui.get("/")  # a page with a form, for a fresh CSRF token
    return ui


def text(resp):
    return resp.data.decode()


def test_login_page_is_chinese_by_default_and_english_on_request(client, staff):
    assert "员工登录" in text(client.get("/login"))
    client.get("/lang/en")
    assert "Staff log in" in text(client.get("/login"))


def test_wrong_password_shows_message_next_to_field(client, staff):
    page = client.get("/login")
    token = CSRF.search(page.data)[1].decode()
    r = client.post("/login", data={"username": "frontdesk", "password": "nope", "csrf_token": token})
    assert r.status_code == 200
    assert 'id="e-password"' in text(r) and "用户名或密码错误" in text(r)
    assert 'value="frontdesk"' in text(r)  # what was typed is kept


def test_forms_without_csrf_token_are_refused(app, staff):
    ui = ui_login(app, "frontdesk")
    ui.get("/members/new")
    r = ui.post("/members/new", {"name": "x", "mobile": "13900000001", "store_code": "BJ01"}, csrf=False,
                headers={"Referer": "http://localhost/members/new"})
    assert r.status_code == 302 and r.location.endswith("/members/new")
    assert "页面已过期" in text(ui.get(r.location))
    assert "没有与“13900000001”匹配的会员" in text(ui.get("/?q=13900000001"))


def test_register_issue_and_print_in_three_screens(app, staff):
    ui = ui_login(app, "frontdesk")
    # Screen 1: the registration form, with the card section ticked by default.
    form = ui.get("/members/new")
    assert 'name="issue_card" checked' in text(form)
    r = ui.post("/members/new", {"name": "张三", "mobile": "138 0013 8000", "birthday": "02-29",
                                 "store_code": "BJ01", "issue_card": "on", "payment_method": "wechat",
                                 "consent_sms": "on", "tags": "VIP，海鲜"})
    assert r.status_code == 302
    # Screen 2: the member page, saying the card is ready, with a print button.
    detail = ui.get(r.location)
    page = text(detail)
    assert "张三" in page and "02-29" in page and "13800138000" in page
    card_no = re.search(r"会员卡 (\d{16}) 已就绪", page)[1]
    assert "VIP" in page and "海鲜" in page
    # Screen 3: the printable card with its QR code.
    printed = ui.get(f"/cards/{card_no}/print")
    assert printed.status_code == 200
    assert "<svg" in text(printed) and card_no[:4] in text(printed)


def test_field_errors_appear_next_to_fields_and_input_is_kept(app, staff, member_factory):
    member_factory(mobile="13900000009")
    ui = ui_login(app, "frontdesk")
    ui.get("/members/new")  # the form, as a browser shows it before it is sent
    r = ui.post("/members/new", {"name": "李四", "mobile": "12345", "birthday": "02-30",
                                 "email": "not-an-email", "store_code": "BJ01", "payment_method": "cash"})
    page = text(r)
    assert r.status_code == 422
    assert 'id="e-mobile"' in page and 'id="e-birthday"' in page and 'id="e-email"' in page
    assert "日期不存在" in page and "邮箱地址无效" in page
    assert 'value="李四"' in page and 'value="12345"' in page
    # The taken-mobile conflict is reported at the mobile field too.
    r = ui.post("/members/new", {"name": "李四", "mobile": "13900000009", "store_code": "BJ01",
                                 "payment_method": "cash"})
    assert r.status_code == 422 and 'id="e-mobile"' in text(r) and "另一位会员" in text(r)


def test_nothing_is_saved_when_card_issue_fails(app, staff, login_api):
    """Registration and card issue are one unit: a bad payment method saves no member."""
    ui = ui_login(app, "frontdesk")
    ui.get("/members/new")  # the form, as a browser shows it before it is sent
    r = ui.post("/members/new", {"name": "王五", "mobile": "13900000010", "store_code": "BJ01",
                                 "issue_card": "on", "payment_method": "bitcoin"})
    assert r.status_code == 422
    assert login_api("front_desk").get("/api/v1/members?q=13900000010").json["total"] == 0


def test_taken_mobile_offers_a_link_to_that_member(app, staff, member_factory):
    existing = member_factory(mobile="13900000077")
    ui = ui_login(app, "frontdesk")
    ui.get("/members/new")  # the form, as a browser shows it before it is sent
    r = ui.post("/members/new", {"name": "重复", "mobile": "13900000077", "store_code": "BJ01",
                                 "issue_card": "on", "payment_method": "cash"})
    assert f'href="/members/{existing["id"]}"' in text(r)


def test_fee_payment_must_be_chosen_when_issuing(app, staff, login_api):
    ui = ui_login(app, "frontdesk")
    ui.get("/members/new")  # the form, as a browser shows it before it is sent
    r = ui.post("/members/new", {"name": "未付", "mobile": "13900000078", "store_code": "BJ01", "issue_card": "on"})
    assert r.status_code == 422 and 'id="e-payment_method"' in text(r)
    assert login_api("front_desk").get("/api/v1/members?q=13900000078").json["total"] == 0


def test_error_pages_speak_the_staff_language(app, staff):
    ui = ui_login(app, "cashier")
    assert "您的角色不能执行此操作" in text(ui.get("/members/new"))
    assert "页面不存在" in text(ui.get("/no-such-page"))
    ui.get("/lang/en")
    assert "Your role may not do this" in text(ui.get("/members/new"))


def test_last_four_digits_list_matches_instead_of_jumping(app, staff, member_factory):
    m = member_factory(name="尾号", mobile="13900004321")
    ui = ui_login(app, "frontdesk")
    r = ui.get("/?q=4321")
    assert r.status_code == 200 and f"/members/{m['id']}" in text(r)
    assert ui.get("/?q=13900004321").status_code == 302


def test_search_scanned_card_goes_straight_to_member(app, staff, member_factory, issue_card):
    m = member_factory(name="赵六")
    card = issue_card(m["id"]).json
    ui = ui_login(app, "cashier")
    r = ui.get("/", query_string={"q": card["qr_payload"]})
    assert r.status_code == 302 and r.location.endswith(f"/members/{m['id']}")
    # Cashiers see a masked mobile on the member page.
    assert "139****" in text(ui.get(r.location))


def test_card_actions_from_member_page(app, staff, member_factory, issue_card):
    m = member_factory()
    card_no = issue_card(m["id"]).json["card_no"]
    ui = ui_login(app, "frontdesk")
    ui.get(f"/members/{m['id']}")
    r = ui.post(f"/cards/{card_no}/freeze")
    assert r.status_code == 200 and 'name="confirmed" value="1"' in text(r)  # without JS it asks first
    r = ui.post(f"/cards/{card_no}/freeze", {"confirmed": "1"})
    assert r.status_code == 302
    assert "会员卡已冻结" in text(ui.get(r.location))
    r = ui.post(f"/cards/{card_no}/replace", {"store_code": "BJ02", "payment_method": "cash"})
    assert r.status_code == 302 and "/print" in r.location
    page = text(ui.get(f"/members/{m['id']}"))
    assert "已补卡" in page


def test_edit_member_keeps_input_on_error(app, staff, member_factory):
    m = member_factory(name="钱七")
    ui = ui_login(app, "frontdesk")
    ui.get(f"/members/{m['id']}/edit")
    r = ui.post(f"/members/{m['id']}/edit", {"name": "钱七七", "mobile": "abc"})
    assert r.status_code == 422 and 'value="钱七七"' in text(r) and 'id="e-mobile"' in text(r)
    r = ui.post(f"/members/{m['id']}/edit", {"name": "钱七七", "mobile": m["mobile"], "segment": "business_fit"})
    assert r.status_code == 302
    assert "钱七七" in text(ui.get(r.location))


def test_logout_ends_the_session(app, staff):
    ui = ui_login(app, "frontdesk")
    assert ui.post("/logout").status_code == 302
    assert ui.get("/").status_code == 302


def test_idle_session_expires(app, staff, clock):
    ui = ui_login(app, "frontdesk")
    clock.advance(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=5)
    r = ui.get("/")
    assert r.status_code == 302 and "/login" in r.location


def test_absolute_session_timeout_even_when_active(app, staff, clock):
    from datetime import timedelta
    start = clock.freeze()
    ui = ui_login(app, "frontdesk")
    step = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1)
    absolute = timedelta(minutes=app.config["SESSION_ABSOLUTE_MINUTES"])
    while clock.now() - start < absolute - step:
        clock.advance(step)
        assert ui.get("/").status_code == 200  # active use keeps the session alive...
    clock.freeze(start + absolute + timedelta(seconds=1))
    assert ui.get("/").status_code == 302  # ...but not past the absolute limit


def test_switching_language_on_a_form_shown_with_errors_returns_to_the_form_not_a_405(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    r = ui.post("/marketing/templates", {"name": "", "subject": "", "body": ""})
    assert r.status_code == 422
    link = re.search(r'href="(/lang/zh_CN[^"]*)"', text(r))[1].replace("&amp;", "&")
    assert "next=" not in link  # no way back to the POST-only URL
    back = ui.client.get(link, headers={"Referer": "http://localhost/marketing/templates"})
    assert back.status_code == 302 and back.headers["Location"].endswith("/marketing/templates")
    assert ui.client.get(back.headers["Location"]).status_code == 200
