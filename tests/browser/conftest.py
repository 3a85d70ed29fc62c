"""Browser tests: the real app served over HTTP, driven in Debian's Chromium by Playwright.

The app runs in this test process (a werkzeug server in a thread) on a freshly migrated
SQLite file loaded with a small demo chain (crm.demo: stores BJ01/BJ02/HT01, its catalogue,
coupons and campaigns, ~40 members, 90 days of bills and hotel stays, staff of every role
with password "demo1234"; no member-search rate limit). Because it is the same process, the
tests' one clock (the `clock` fixture, CRM_TEST_CLOCK) is the server's clock too. The server
and Chromium are started once per session; every test gets a fresh browser context (no
cookies), so log in in each test.

Fixtures:

- ``live_server``  (session) ``.url`` is the base URL; ``.app`` the Flask app;
  ``live_server.run(fn, *args)`` calls fn inside an app context (and commits) to read or
  prepare data through the services: ``live_server.run(lambda: Member.query.count())``.
- ``page``  a Playwright page at 1366x768 (the till laptop) whose ``goto`` takes paths
  (``page.goto("/till")``). After the test it fails the test if the page met a server error
  (HTTP 5xx), an uncaught JavaScript error, or a Content-Security-Policy refusal.
  Playwright dismisses confirm() dialogs unless told otherwise: answer one with
  ``page.once("dialog", lambda d: d.accept())`` before the click that opens it.
- ``new_page(width=1366, height=768, **context_options)``  another such page in a context of
  its own (a second user, a phone at 390x844, a tablet at 768x1024).
- ``new_member(name=..., card=True, top_up="0", pin=None, points=0, coupons=())``  a member
  registered at BJ01 through the services (unique mobile), optionally with an active card,
  stored value (yuan, paid cash at BJ01), a 6-digit payment PIN, points and coupons (coupon
  type codes, e.g. "CASH50", "OYSTER180", "BEER"); returns a dict: id, name, mobile,
  card_no (or None), coupon_codes.
- ``unique_mobile()``  a mobile number no member has yet, to type into a form.
- ``login(page, role, lang="en")``  logs in as the demo user of that role: admin, manager,
  front_desk (alias frontdesk), hotel_desk (hoteldesk), cashier, marketing; lang "en" or
  "zh_CN". Leaves the page on wherever the app lands that role.
- ``shot(page, name, full_page=False)``  saves artifacts/screenshots/<name>.png (git-ignored;
  CI keeps the folder) and returns its path.
- ``pdf(page, name, **pdf_options)``  prints the page to artifacts/pdf/<name>.pdf with the
  page's own @page size (``prefer_css_page_size``) and returns ``(path, sizes)``, sizes being
  each page's (width_mm, height_mm).
- ``axe(page, **options)``  runs the vendored axe-core (tests/browser/vendor) on the page as
  it is now and returns its serious and critical violations, each
  ``{"id", "impact", "help", "targets"}``; the list's ``str()`` is a readable report:
  ``found = axe(page); assert not found, str(found)``.

Example::

    def test_till_prices_a_bill(page, login, shot):
        login(page, "cashier")
        page.goto("/till")
        shot(page, "till-empty")

Chromium is /usr/bin/chromium (Debian's package; `make browser` installs it) or $CHROMIUM.
Without it the browser tests are skipped, except with CI=true, where they fail.
"""
import itertools
import logging
import os
import random
import re
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from crm.extensions import db
from tests.conftest import IN_CI, make_app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
PDFS = ARTIFACTS / "pdf"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1366, "height": 768}
DEMO_PASSWORD = "demo1234"
USERS = {"admin": "admin", "manager": "manager", "front_desk": "frontdesk", "frontdesk": "frontdesk",
         "hotel_desk": "hoteldesk", "hoteldesk": "hoteldesk", "cashier": "cashier", "marketing": "marketing"}
DEMO_MEMBERS, DEMO_DAYS = 40, 90


class LiveServer:
    def __init__(self, app, url):
        self.app, self.url = app, url

    def run(self, fn, *args, **kwargs):
        """fn(*args) inside an app context, committed; its result."""
        with self.app.app_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()
                return result
            finally:
                db.session.remove()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    from flask_migrate import upgrade

    from crm.demo import load_demo

    path = tmp_path_factory.mktemp("browser-db") / "crm.sqlite3"
    app = make_app(f"sqlite:///{path}", MEMBER_SEARCH_LIMIT="")
    with app.app_context():
        upgrade(revision="heads")  # as `flask db upgrade` would (all heads, should a branch be open)
        _enable_loggers()
        load_demo(member_count=DEMO_MEMBERS, history_days=DEMO_DAYS)
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


def _enable_loggers():
    """alembic's fileConfig (migrations/env.py) disables every logger it does not name: turn the
    app's back on, so a server error's traceback shows in the failing test's captured log."""
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False


def _no_browser(why):
    if IN_CI:
        pytest.fail(f"CI=true but the browser tests cannot run: {why} (run `make browser`)")
    pytest.skip(f"browser tests skipped: {why} (run `make browser`)")


@pytest.fixture(scope="session")
def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _no_browser(f"playwright is not installed ({exc})")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _no_browser(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class PageProblems:
    """What a page met that no user should: 5xx answers, uncaught JS errors, CSP refusals."""

    def __init__(self, page):
        self.items = []
        page.on("response", lambda r: r.status >= 500 and self.items.append(f"HTTP {r.status} {r.url}"))
        page.on("pageerror", lambda exc: self.items.append(f"JavaScript error: {exc}"))
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.items.append(f"CSP refusal: {message.text}")


@pytest.fixture
def new_page(browser, live_server):
    contexts, watched = [], []

    def make(width=LAPTOP["width"], height=LAPTOP["height"], **options):
        context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height},
                                      **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        watched.append(PageProblems(page))
        return page

    yield make
    problems = [p for w in watched for p in w.items]
    for context in contexts:
        context.close()
    if problems:
        pytest.fail("the browser met problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(new_page):
    return new_page()


_mobiles = itertools.count(random.Random().randrange(10**7))


def _next_mobile() -> str:
    return f"135{next(_mobiles) % 10**8:08d}"


@pytest.fixture
def unique_mobile():
    """unique_mobile() -> a mainland mobile no member has (for typing into a registration form)."""
    return _next_mobile


@pytest.fixture
def new_member(live_server):
    def make(name="测试会员", card=True, top_up="0", pin=None, points=0, coupons=()):
        from crm.cards import service as cards
        from crm.core.actor import Actor
        from crm.core.timeutil import local_today
        from crm.coupons import service as coupon_service
        from crm.members import service as members
        from crm.members.schemas import MemberCreateSchema
        from crm.points import service as points_service
        from crm.programme import service as programme
        from crm.stores import service as stores
        from crm.wallet import service as wallet

        actor = Actor.system("browser-test")

        def build():
            mobile = _next_mobile()
            member = members.register(actor, MemberCreateSchema().load(
                {"name": name, "mobile": mobile, "store_code": "BJ01"}))
            store = stores.get_by_code("BJ01")
            card_no = cards.issue(actor, member.id, store_code="BJ01", fee_paid=programme.get("card_fee"),
                                  payment_method="cash").card_no if card else None
            if Decimal(top_up) > 0:
                wallet.top_up(actor, member.id, store=store, amount=int(Decimal(top_up) * 100),
                              payment_method="cash")
            if pin:
                wallet.set_pin(actor, member.id, pin)
            if points:
                points_service.adjust(actor, member.id, points, "browser test opening balance", store=store)
            codes = [coupon_service.issue(actor, member.id, coupon_service.get_definition(code), source="manual",
                                          today=local_today(store.timezone)).code for code in coupons]
            return {"id": member.id, "name": name, "mobile": mobile, "card_no": card_no, "coupon_codes": codes}
        return live_server.run(build)
    return make


@pytest.fixture
def login():
    def log_in(page, role, lang="en"):
        username = USERS.get(role, role)
        lang = "zh_CN" if lang.lower().startswith("zh") else lang
        page.goto(f"/lang/{lang}?next=/login")
        page.goto("/login")
        page.fill("#f-username", username)
        page.fill("#f-password", DEMO_PASSWORD)
        with page.expect_navigation():
            page.click("main form button")
        assert "/login" not in page.url, f"log-in as {username} failed: {page.url}"
        return page
    return log_in


@pytest.fixture(scope="session")
def _artifact_dirs():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    PDFS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def shot(_artifact_dirs):
    def save(page, name, full_page=False):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path
    return save


_MEDIABOX = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")


def pdf_page_sizes_mm(data: bytes) -> list[tuple[float, float]]:
    """Each page's (width, height) in mm, from the MediaBoxes Chromium writes (1 pt = 25.4/72 mm)."""
    return [(round((float(x1) - float(x0)) * 25.4 / 72, 1), round((float(y1) - float(y0)) * 25.4 / 72, 1))
            for x0, y0, x1, y1 in _MEDIABOX.findall(data)]


@pytest.fixture
def pdf(_artifact_dirs):
    def print_pdf(page, name, **options):
        path = PDFS / f"{name}.pdf"
        options = {"prefer_css_page_size": True, "print_background": True, **options}
        data = page.pdf(path=str(path), **options)
        return path, pdf_page_sizes_mm(data)
    return print_pdf


class Violations(list):
    def __str__(self):
        if not self:
            return "no serious or critical violations"
        return "axe-core found:\n" + "\n".join(
            f"  [{v['impact']}] {v['id']}: {v['help']} at {', '.join(v['targets'][:5])}" for v in self)


_AXE_RUN = """async (options) => {
  const result = await axe.run(document, options);
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" "))}));
}"""


@pytest.fixture(scope="session")
def _axe_source():
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture
def axe(_axe_source):
    def run(page, **options):
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(_axe_source)  # through DevTools, so the page's CSP does not apply
        found = page.evaluate(_AXE_RUN, {"resultTypes": ["violations"], **options})
        return Violations(v for v in found if v["impact"] in ("serious", "critical"))
    return run
