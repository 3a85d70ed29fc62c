"""Review (issue 13): import files as editors and converters really leave them."""
import io

from tests.test_imports_encoding import STAYS, _send, manager  # noqa: F401 (fixture)
from tests.test_ui import text, ui_login


def test_a_bom_in_front_of_gbk_text_is_read_as_gbk(manager, stores):  # noqa: F811
    # A converter (or Notepad) put the UTF-8 byte-order mark in front of GBK text: the header
    # was read as GB18030 with the mark glued to "stay_no" ("The header row lacks: stay_no").
    r = _send(manager, "/api/v1/imports/stays", b"\xef\xbb\xbf" + STAYS.encode("gbk"))
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["imported"], r.json["encoding"]) == ("done", 2, "gb18030")
    top = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=business_fit").json
    assert top[0]["name"] == "华为技术有限公司"


def test_the_import_page_reads_a_bom_and_gbk_file(app, staff, stores):
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/reports/imports")
    r = ui.post("/reports/imports", {"kind": "stays", "file": (io.BytesIO(b"\xef\xbb\xbf" + STAYS.encode("gbk")),
                                                               "导出.csv")}, content_type="multipart/form-data")
    assert r.status_code == 303
    page = text(ui.get(r.headers["Location"]))
    assert "Read as: Chinese GBK / GB18030" in page and "2 new rows" in page


def test_gb18030_with_broken_bytes_names_the_line_they_are_on(manager, stores):  # noqa: F811
    lines = STAYS.encode("gb18030").split(b"\n")
    lines[2] = lines[2].replace("李四".encode("gb18030"), b"\x80\xff")  # two bytes no encoding reads
    r = _send(manager, "/api/v1/imports/stays", b"\n".join(lines))
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_encoding"
    assert r.json["error"]["details"]["line"] == 3 and "line 3" in r.json["error"]["message"].lower()
