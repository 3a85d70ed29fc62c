"""Files as Chinese Excel saves them (GBK / GB18030 "CSV") import like UTF-8 ones, with the
encoding that was detected reported; a bad line lists every problem it has."""
import io

import pytest

from tests.test_ui import text, ui_login

STAYS = ("stay_no,store_code,arrival,departure,rooms,room_revenue,segment,company,sales_rep\n"
         "G1,HT01,2026-03-05,2026-03-07,1,800.00,business_fit,华为技术有限公司,张三\n"
         "G2,HT01,2026-03-10,2026-03-11,1,400.00,online_fit,,李四\n")


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def _send(api, path, body: bytes, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = api.post(f"{path}{'?' + qs if qs else ''}", data=body, headers={"Content-Type": "text/csv"})
    return api.get(r.json["status_url"]) if r.status_code == 202 else r


@pytest.mark.parametrize("codec, reported", [("gbk", "gb18030"), ("gb18030", "gb18030"), ("utf-8", "utf-8"),
                                             ("utf-8-sig", "utf-8")])
def test_gbk_and_utf8_files_import_alike_and_say_what_they_were_read_as(manager, stores, codec, reported):
    r = _send(manager, "/api/v1/imports/stays", STAYS.encode(codec))
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["imported"], r.json["encoding"]) == ("done", 2, reported)
    top = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=business_fit").json
    assert top[0]["name"] == "华为技术有限公司" and top[0]["sales_rep"] == "张三"  # the Chinese text survived


def test_a_file_in_neither_encoding_is_refused_with_a_hint(manager, stores):
    r = _send(manager, "/api/v1/imports/stays", STAYS.encode("utf-16"))
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_encoding"
    assert "CSV UTF-8" in r.json["error"]["message"]


def test_the_job_page_reports_a_gbk_file(app, staff, stores):
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/reports/imports")
    r = ui.post("/reports/imports", {"kind": "stays", "file": (io.BytesIO(STAYS.encode("gbk")), "导出.csv")},
                content_type="multipart/form-data")
    assert r.status_code == 303
    page = text(ui.get(r.headers["Location"]))
    assert "Read as: Chinese GBK / GB18030" in page and "2 new rows, 0 updated, 0 skipped." in page


def test_a_bad_line_lists_every_problem_it_has(manager, stores):
    body = ("check_no,store_code,closed_at,amount,covers,segment\n"
            "C1,BJ01,2026-03-01T19:00:00+08:00,120.00,2,walk_in\n"
            "C2,NOPE,yesterday,12.345,-1,tourists\n")
    r = _send(manager, "/api/v1/imports/checks", body.encode("gbk"))
    assert (r.json["status"], r.json["error_count"]) == ("failed", 1)  # one bad row …
    [error] = r.json["errors"]
    assert error["line"] == 3 and len(error["problems"]) == 5  # … with its five problems
    for word in ("NOPE", "closed_at", "amount", "covers", "tourists"):
        assert word in error["message"]
        assert sum(word in p for p in error["problems"]) == 1
    stay = ("stay_no,store_code,arrival,departure,rooms,room_revenue,segment,day_use\n"
            "S1,BJ01,2026-03-10,2026-03-01,0,1.00,walk_in,1\n")
    [error] = _send(manager, "/api/v1/imports/stays", stay.encode()).json["errors"]
    assert len(error["problems"]) == 4  # not a hotel; departs before arriving; day use over days; no rooms
