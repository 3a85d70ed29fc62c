"""Staff journeys in a real browser: what the person at the desk sees, step by step."""
import io
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

MM_AT_96_DPI = 96 / 25.4  # CSS pixels per millimetre


def test_register_with_a_card_then_print_it_at_id1_size(page, login, shot, pdf, unique_mobile):
    login(page, "front_desk")
    page.goto("/members/new")
    page.get_by_label("Name").fill("林小雨")
    page.get_by_label("Mobile").fill(unique_mobile())
    page.get_by_label("Fee paid by").select_option("cash")
    shot(page, "register-filled")
    page.get_by_role("button", name="Register").click()

    expect(page).to_have_url(re.compile(r"/members/\d+"))
    expect(page.get_by_text("Member registered.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("林小雨"))).to_be_visible()
    shot(page, "member-registered")

    page.get_by_role("link", name="Print card").first.click()
    expect(page).to_have_url(re.compile(r"/cards/\d{16}/print"))
    card = page.locator(".member-card")
    expect(card).to_contain_text("林小雨")
    shot(page, "card-print-view")

    page.emulate_media(media="print")
    box = card.evaluate("e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }")
    assert box[0] == pytest.approx(85.6 * MM_AT_96_DPI, abs=0.5), box  # ID-1: 85.6 × 54 mm
    assert box[1] == pytest.approx(54 * MM_AT_96_DPI, abs=0.5), box
    _path, sizes = pdf(page, "member-card")
    assert len(sizes) == 1, sizes  # one page, the card's own size (Chromium rounds it to whole points)
    assert sizes[0] == (pytest.approx(85.6, abs=0.3), pytest.approx(54.0, abs=0.3)), sizes


def _stored_value(page):
    return page.locator("#wallet-balance").inner_text().split()[0]


def _top_up_history(page):
    """The stored-value top-ups listed in the member page's history (what the front desk sees)."""
    return page.locator("#history tr[data-kind='wallet'][data-event='topup']")


def _top_ups(live_server, member_id):
    from crm.wallet.models import WalletTopup

    return live_server.run(lambda: [t.amount for t in WalletTopup.query.filter_by(member_id=member_id)])


def _to_confirm_page(page, member_id, amount):
    page.goto(f"/members/{member_id}")
    form = page.locator("form", has=page.get_by_role("button", name="Show bonus and gifts"))
    form.get_by_label("Amount").fill(amount)
    form.get_by_label("Paid by").select_option("cash")
    form.get_by_role("button", name="Show bonus and gifts").click()
    expect(page.get_by_role("heading", name="Confirm top-up")).to_be_visible()


def test_top_up_confirmed_twice_tops_up_once(page, login, shot, new_member, live_server):
    member = new_member(name="周双击")
    login(page, "front_desk")
    _to_confirm_page(page, member["id"], "300")
    shot(page, "top-up-confirm")
    confirmation = page.content()  # the same confirmation still open in a second tab
    page.get_by_role("button", name="Money received, top up").dblclick()  # an impatient double click
    expect(page).to_have_url(re.compile(rf"/members/{member['id']}"))
    expect(page.get_by_text(re.compile(r"Topped up 300\.00"))).to_be_visible()
    assert _stored_value(page) == "300.00"

    tab = page.context.new_page()
    tab.route("**/second-tab", lambda route: route.fulfill(body=confirmation, content_type="text/html"))
    tab.goto("/second-tab")
    tab.get_by_role("button", name="Money received, top up").click()
    expect(tab.get_by_text(re.compile("nothing was done twice"))).to_be_visible()
    shot(tab, "top-up-sent-again")
    assert _stored_value(tab) == "300.00"
    expect(_top_up_history(tab)).to_have_count(1)
    expect(_top_up_history(tab)).to_contain_text("300.00")
    assert _top_ups(live_server, member["id"]) == [30000]


def test_top_up_confirmed_in_two_tabs_at_once_without_javascript_tops_up_once(new_page, login, new_member,
                                                                                live_server):
    """No script to hold back a second press: two tabs holding the same confirmation send it at
    the same moment, and the form's one-time token lets one of them through."""
    page = new_page(java_script_enabled=False)
    member = new_member(name="吴无脚本")
    login(page, "front_desk")
    _to_confirm_page(page, member["id"], "200")
    confirmation = page.content()
    other = page.context.new_page()
    other.route("**/second-tab", lambda route: route.fulfill(body=confirmation, content_type="text/html"))
    other.goto("/second-tab")
    sent = []
    for tab in (page, other):
        tab.on("request", lambda r: r.method == "POST" and "/wallet/top-up" in r.url and sent.append(r.url))
    for tab in (page, other):
        tab.get_by_role("button", name="Money received, top up").click(no_wait_after=True)
    for tab in (page, other):
        tab.wait_for_url(re.compile(rf"/members/{member['id']}"))
    assert len(sent) == 2, sent
    messages = " ".join(tab.locator(".flash").first.inner_text() for tab in (page, other))
    assert "Topped up 200.00" in messages and "nothing was done twice" in messages, messages
    assert _stored_value(page) == "200.00"
    expect(_top_up_history(page)).to_have_count(1)
    assert _top_ups(live_server, member["id"]) == [20000]


def test_phone_card_code_rotates_and_the_new_code_finds_the_member(new_page, login, shot, new_member, live_server,
                                                                    clock):
    from crm.cards import codes, images
    from crm.cards.service import get_card

    member = new_member(name="郑手机")
    desk = new_page()
    login(desk, "front_desk")
    desk.goto(f"/members/{member['id']}")
    desk.once("dialog", lambda dialog: dialog.accept())  # "Give the member a new phone card link?"
    desk.get_by_role("button", name="Phone card").click()
    link = desk.get_by_text(re.compile(r"^http://\S+/m/\S+$")).inner_text()

    card_id = live_server.run(lambda: get_card(member["card_no"]).id)

    def qr_of_step(offset=0):
        return live_server.run(lambda: (lambda code: (code, images.svg(code)))(
            codes.dynamic_payload(card_id, now=clock.now().timestamp() + offset * codes.STEP_SECONDS)))

    # Half a second before the code's 30-second step ends: the page reloads itself 2 s later.
    now = clock.now().timestamp()
    clock.freeze(clock.now() + timedelta(seconds=(codes.STEP_SECONDS - now % codes.STEP_SECONDS) - 0.5))
    first_code, first_svg = qr_of_step()
    phone = new_page(width=390, height=844, is_mobile=True, has_touch=True)
    loads = []
    phone.on("response", lambda r: "/m/" in r.url and loads.append(r))
    phone.goto(link)
    clock.advance(seconds=codes.STEP_SECONDS)  # the next step, before the page's own refresh comes
    second_code, second_svg = qr_of_step()
    assert first_svg in loads[0].text()
    qr = phone.locator(".phone-qr svg")
    expect(qr).to_be_visible()
    assert 150 <= qr.bounding_box()["width"] <= 390
    shot(phone, "phone-card")

    for _ in range(75):  # up to 15 s for the refresh
        if len(loads) > 1:
            break
        phone.wait_for_timeout(200)
    assert len(loads) == 2, "the phone card did not refresh itself"
    assert second_code != first_code and second_svg in loads[1].text()
    expect(qr).to_be_visible()

    cashier = new_page()
    login(cashier, "cashier")
    cashier.goto("/")
    search = cashier.get_by_role("searchbox").or_(cashier.get_by_label("Search")).first
    search.fill(second_code)
    search.press("Enter")
    cashier.wait_for_load_state()
    if not re.search(rf"/members/{member['id']}$", cashier.url):  # a list of one: open it
        cashier.get_by_role("link", name=member["name"]).click()
    expect(cashier).to_have_url(re.compile(rf"/members/{member['id']}$"))
    expect(cashier.get_by_role("heading", name=re.compile(member["name"]))).to_be_visible()

    stale_code, _svg = qr_of_step(-3)  # a screenshot from a minute and a half ago
    cashier.goto("/")
    search = cashier.get_by_role("searchbox").or_(cashier.get_by_label("Search")).first
    search.fill(stale_code)
    search.press("Enter")
    expect(cashier.get_by_text(re.compile("No member matches"))).to_be_visible()


def _matching(text):
    found = re.search(r"(\d+) members? match", text)
    assert found, text
    return int(found[1])


def test_audience_count_follows_the_filters_as_they_change(page, login, shot):
    login(page, "marketing")
    page.goto("/marketing/audiences/new")
    page.get_by_label("Audience name").fill("Entry level then gold")
    count = page.locator("#live-count")
    expect(page.locator("#count")).to_be_hidden()
    page.evaluate("() => { window.stillHere = true; }")  # gone if the page were reloaded
    levels = page.locator("fieldset", has=page.get_by_text("Levels", exact=True)).get_by_role("checkbox")

    levels.first.check()  # the entry level: most of the demo's members
    expect(count).to_have_text(re.compile(r"\d+ members? match"))
    entry = _matching(count.inner_text())
    levels.first.uncheck()
    levels.last.check()  # the top level: a few
    expect(count).not_to_have_text(count.inner_text())
    top = _matching(count.inner_text())
    assert top < entry, (top, entry)
    assert page.evaluate("() => window.stillHere === true")
    shot(page, "audience-live-count")

    page.get_by_role("button", name="Count members").click()  # the same count without JavaScript
    expect(page.locator("#live-count")).to_have_text(re.compile(r"\d+ members? match"))
    assert page.evaluate("() => window.stillHere") is None
    assert _matching(page.locator("#live-count").inner_text()) == top


def test_report_excel_download_holds_the_page_figures_as_numbers(page, login, shot):
    from openpyxl import load_workbook

    login(page, "manager")
    page.goto("/reports/")
    shown = [[cell.strip() for cell in row] for row in page.locator("main table").first.locator("tr").evaluate_all(
        "rows => rows.map((r) => [...r.cells].map((c) => c.innerText))")]
    assert len(shown) > 10 and all(len(row) == 2 for row in shown), shown
    shot(page, "report-kpis")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download Excel").first.click()
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2) if row[0].value}

    assert list(cells) == [label for label, _value in shown]  # the page's rows, in its order
    for label, value in shown:
        cell = cells[label]
        if not re.fullmatch(r"-?[\d,]+(\.\d+)?", value):
            continue
        assert isinstance(cell.value, (int, float)), f"{label}: {cell.value!r} is text in Excel"
        figure = Decimal(value.replace(",", ""))
        if "%" in cell.number_format:  # a rate: the fraction, shown as per cent
            assert Decimal(str(cell.value)) * 100 == pytest.approx(figure, abs=Decimal("0.01")), (label, cell.value)
        else:
            assert Decimal(str(cell.value)) == figure, (label, cell.value)
        if "." in value:  # money keeps its two places in Excel too
            assert cell.number_format.endswith(("0.00", "0.00%")), (label, cell.number_format)
