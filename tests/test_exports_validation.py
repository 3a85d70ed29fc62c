"""Every CSV / Excel export checks its whole query before the first byte: a bad store code,
date or number is a JSON 4xx on the API and a message on the page, never a 200 with a cut-off
file (nor an HTML 500 for Excel). A failure after the download began is logged and breaks the
download instead of ending it like a complete file."""
import logging
from io import BytesIO
from urllib.parse import urlencode, urlsplit

import pytest
from openpyxl import load_workbook

from crm.errors import Invalid
from crm.reports import exports
from tests.test_ui import text, ui_login

BIG = "2147483648"  # 2^31: one past the largest id or number a column holds
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}
BAD_PERIODS = [{"from": "2026-02-30"}, {"from": BIG}, {"to": BIG}, {"from": "1999-12-31"},
               {"from": "2026-03-31", "to": "2026-03-01"}, {"from": "2020-01-01", "to": "2026-01-01"},
               {"format": "pdf"}, {"store_code": "NOPE"}, {"store_code": BIG}]
BAD_YEARS = [{"year": BIG}, {"year": "1999"}, {"year": "-1"}, {"month": BIG}, {"month": "13"}, {"format": "pdf"},
             {"store_code": "NOPE"}]
API = {  # path, a good query, the bad changes to it
    "kpis": ("/api/v1/reports/kpis", PERIOD, BAD_PERIODS),
    "bills": ("/api/v1/reports/bills", PERIOD, BAD_PERIODS),
    "rooms": ("/api/v1/reports/rooms", PERIOD, BAD_PERIODS),
    "segments": ("/api/v1/reports/segments", {"year": "2026"}, BAD_YEARS),
    "monthly": ("/api/v1/reports/monthly", {"year": "2026"}, BAD_YEARS),
    "rankings": ("/api/v1/reports/rankings", {"year": "2026", "segment": "business_fit"},
                 BAD_YEARS + [{"limit": BIG}, {"segment": "nope"}, {"by": "nope"}]),
    "competitor-share": ("/api/v1/reports/competitor-share", {"year": "2026", "month": "3", "store_code": "HT01"},
                         BAD_YEARS + [{"store_code": ""}]),
    "rfm": ("/api/v1/reports/rfm", {"group": "champions"}, [{"group": "nope"}, {"format": "pdf"}]),
}
UI = {
    "kpis": ("/reports/", PERIOD, BAD_PERIODS),
    "bills": ("/reports/bills", PERIOD, BAD_PERIODS),
    "rooms": ("/reports/rooms", PERIOD, BAD_PERIODS),
    "segments": ("/reports/segments", {"year": "2026"}, BAD_YEARS),
    "monthly": ("/reports/monthly", {"year": "2026"}, BAD_YEARS),
    "rankings": ("/reports/rankings", {"year": "2026", "segment": "business_fit", "by": "revenue"},
                 BAD_YEARS + [{"limit": BIG}, {"segment": "nope"}]),
    "competitors": ("/reports/competitors", {"year": "2026", "month": "3", "store_code": "HT01"}, BAD_YEARS),
    "rfm": ("/reports/rfm", {"group": "champions"}, [{"group": "nope"}]),
}


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def _url(path, query, change, fmt):
    return f"{path}?{urlencode({**query, 'format': fmt, **change})}"


@pytest.mark.parametrize("name", list(API))
def test_an_api_export_checks_everything_before_it_answers(manager, name):
    path, query, bad = API[name]
    for fmt in ("csv", "xlsx"):
        good = manager.get(_url(path, query, {}, fmt))
        assert good.status_code == 200 and "attachment" in good.headers["Content-Disposition"], good.data[:300]
        for change in bad:
            r = manager.get(_url(path, query, change, fmt))
            assert 400 <= r.status_code < 500 and r.mimetype == "application/json", (change, fmt, r.data[:300])
            assert r.json["error"]["code"] and "Content-Disposition" not in r.headers, (change, fmt)


def test_an_unknown_store_is_named_before_the_bills_go_out(manager, stores):
    for fmt in ("csv", "xlsx"):
        r = manager.get(_url("/api/v1/reports/bills", PERIOD, {"store_code": "NOPE"}, fmt))
        assert (r.status_code, r.json["error"]["code"], r.json["error"]["details"]["field"]) == (
            422, "unknown_store", "store_code")


@pytest.mark.parametrize("name", list(UI))
def test_a_page_export_shows_a_message_instead_of_a_file(app, staff, name):
    ui = ui_login(app, staff["manager"], lang="en")
    path, query, bad = UI[name]
    for fmt in ("csv", "xlsx"):
        good = ui.get(_url(path, query, {}, fmt))
        assert good.status_code == 200 and "attachment" in good.headers["Content-Disposition"], text(good)[:300]
        for change in bad:
            r = ui.get(_url(path, query, change, fmt))
            assert "Content-Disposition" not in r.headers and r.mimetype == "text/html", (change, fmt)
            if r.status_code == 302:  # the bills download goes back to the KPI page with the message
                assert urlsplit(r.headers["Location"]).path == "/reports/"
                with ui.client.session_transaction() as session:  # (read here: that page takes a while)
                    assert [c for c, _m in session.pop("_flashes", [])] == ["error"], (change, fmt)
            else:
                page = text(r)
                assert r.status_code == 422 and ('class="error"' in page or 'class="flash error"' in page), (
                    change, fmt)


def test_every_bill_is_in_the_file_after_the_early_check(app, staff, manager, member_factory, catalogue, checkout,
                                                          store_today):
    a, b = member_factory(), member_factory()
    for member in (a, b):
        assert checkout([("SALMON", 1)], member_id=member["id"], covers=1).status_code == 201
    query = {"from": store_today, "to": store_today, "store_code": "bj01"}
    ui = ui_login(app, staff["manager"], lang="en")
    for client, path in ((manager, "/api/v1/reports/bills"), (ui, "/reports/bills")):
        lines = client.get(_url(path, query, {}, "csv")).data.decode("utf-8-sig").splitlines()
        assert [line.split(",")[4] for line in lines[1:]] == [str(a["id"]), str(b["id"])], path
        rows = list(load_workbook(BytesIO(client.get(_url(path, query, {}, "xlsx")).data)).active.values)
        assert [row[4] for row in rows[1:]] == [a["id"], b["id"]], path


def test_a_failure_after_the_download_began_is_logged_and_breaks_it(app, caplog):
    def rows():
        yield ("a", 1)
        raise RuntimeError("database went away")

    with app.test_request_context():
        response = exports.download("csv", "bills", ("x", "y"), rows())
        chunks = iter(response.response)
        assert [next(chunks), next(chunks)] == ["\ufeffx,y\r\n", "a,1\r\n"]  # the download has begun
        with caplog.at_level(logging.ERROR, logger="crm.reports.exports"), pytest.raises(RuntimeError):
            list(chunks)  # not swallowed: the server drops the connection, the client sees a broken download
    assert "cut off" in caplog.text and "bills-" in caplog.text


def test_an_excel_file_or_a_bad_format_fails_before_any_response(app):
    def rows():
        yield ("a", 1)
        raise RuntimeError("database went away")

    with app.test_request_context():
        with pytest.raises(RuntimeError):  # built whole first: an error response, not a broken file
            exports.download("xlsx", "bills", ("x", "y"), rows())
        with pytest.raises(Invalid) as caught:
            exports.download("pdf", "bills", ("x",), iter(()))
        assert caught.value.code == "invalid_format"
