"""Review (issue 13): the reports' forms under hostile input — a message beside the field."""
import pytest

from tests.test_ui import text, ui_login


@pytest.mark.parametrize("competitor_id", ["²", "99999999999999999999", "٣"])
def test_a_competitor_month_for_a_hotel_id_that_is_no_number_is_refused_beside_the_hotel(app, staff, stores,
                                                                                        competitor_id):
    # "²" passed str.isdigit() and failed int(): a 500; a 20-digit id overflowed the column.
    ui = ui_login(app, staff["manager"], lang="en")
    url = "/reports/competitors?year=2026&month=1&store_code=HT01"
    ui.get(url)
    assert ui.post(url, {"op": "add", "store_code": "HT01", "name": "对手酒店", "rooms": "100"}).status_code == 302
    r = ui.post(url, {"op": "month", "competitor_id": competitor_id, "year": "2026", "month": "1",
                      "available_rooms": "10", "rooms_sold": "5", "room_revenue": "100.00"})
    assert r.status_code == 422
    page = text(r)
    assert "Choose the competitor." in page and 'name="available_rooms"' in page
