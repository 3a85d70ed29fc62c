"""One definition per figure: the room KPIs, the segment table and the competitive set give
the same occupancy, ADR and RevPAR for the same hotel and month (complimentary rooms count
as occupied everywhere)."""
import pytest

from tests.test_reports import STAYS, post_csv

MARCH = "store_code=HT01&from=2026-03-01&to=2026-03-31"


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def test_room_kpis_and_the_competitive_set_agree_for_the_same_hotel_month(manager):
    assert post_csv(manager, "/api/v1/imports/stays", STAYS).json["imported"] == 5  # S4 is complimentary
    rival = manager.post("/api/v1/reports/competitors", json={"store_code": "HT01", "name": "竞品A", "rooms": 150})
    manager.put(f"/api/v1/reports/competitors/{rival.json['id']}/months",
                json={"year": 2026, "month": 3, "available_rooms": 4650, "rooms_sold": 3000,
                      "room_revenue": "1200000.00"})
    kpis = manager.get(f"/api/v1/reports/rooms?{MARCH}").json
    table = manager.get("/api/v1/reports/competitor-share?store_code=HT01&year=2026&month=3").json
    own = table["rows"][0]
    for figure in ("available_rooms", "rooms_occupied", "room_revenue", "occupancy", "adr", "revpar"):
        assert own[figure] == kpis[figure], figure
    assert (own["occupancy"], own["adr"], own["revpar"]) == ("0.11", "271.43", "0.31")  # 7 rooms with S4's 2
    assert own["actual_share"] == "0.23"  # 7 ÷ (7 + 3000)
    segments = manager.get("/api/v1/reports/segments?store_code=HT01&year=2026&month=3").json
    total = next(r for r in segments["rows"] if r["key"] == "total")["values"]["actual"]
    assert (total["occupancy"], total["adr"], total["revpar"], total["room_nights"]) == (
        kpis["occupancy"], kpis["adr"], kpis["revpar"], kpis["rooms_occupied"])


def test_the_pages_show_the_same_figures(app, staff, manager):
    from tests.test_ui import text, ui_login
    post_csv(manager, "/api/v1/imports/stays", STAYS)
    ui = ui_login(app, staff["manager"], lang="en")
    rooms = text(ui.get(f"/reports/rooms?{MARCH}"))
    share = text(ui.get("/reports/competitors?store_code=HT01&year=2026&month=3"))
    for shown in ("271.43", "0.31", "1900.00"):
        assert shown in rooms and shown in share
    assert "Rooms occupied (sold + complimentary)" in rooms and "Rooms occupied (sold + complimentary)" in share
