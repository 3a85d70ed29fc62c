"""Server-side UI sessions: logging out, a password reset or deactivation ends a session even
for a copy of its cookie; the check costs one query per request."""
import pytest
from sqlalchemy import event, select

from crm.auth.models import StaffSession
from crm.extensions import db
from tests.test_ui import ui_login


def copy_of(ui, app):
    """Another browser holding a copy of this one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", ui.client.get_cookie("session").value)
    return thief


def test_a_copied_cookie_stops_working_after_logout(app, staff):
    ui = ui_login(app, "frontdesk")
    thief = copy_of(ui, app)
    assert thief.get("/").status_code == 200  # a copied cookie is as good as the original...
    assert ui.post("/logout").status_code == 302
    r = thief.get("/")
    assert r.status_code == 302 and "/login" in r.location  # ...until its owner logs out
    assert "/login" in ui.get("/").location


@pytest.mark.parametrize("change", [{"password": "a-new-password-1"}, {"active": False}])
def test_a_password_reset_or_deactivation_ends_open_sessions(app, staff, login_api, change):
    ui = ui_login(app, "cashier")
    thief = copy_of(ui, app)
    with app.app_context():
        from crm.auth.models import Staff
        cashier_id = db.session.scalar(select(Staff.id).where(Staff.username == "cashier"))
    assert login_api("admin").patch(f"/api/v1/staff/{cashier_id}", json=change).status_code == 200
    for browser in (ui.client, thief):
        r = browser.get("/till")
        assert r.status_code == 302 and "/login" in r.location


def test_logging_in_again_closes_the_browsers_previous_session(app, staff):
    ui = ui_login(app, "frontdesk")
    before = copy_of(ui, app)
    ui.get("/login")
    assert ui.post("/login", {"username": "frontdesk", "password": "correct-horse-1"}).status_code == 302
    assert ui.get("/").status_code == 200
    assert before.get("/").status_code == 302


def test_one_session_query_per_request_and_activity_written_at_most_once_a_minute(app, staff, clock):
    clock.freeze()
    ui = ui_login(app, "frontdesk")
    statements = []
    with app.app_context():
        engine = db.engine

    def seen(_conn, _cursor, sql, *_args):
        if "staff_sessions" in sql:
            statements.append(sql.split()[0].upper())
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            clock.advance(seconds=15)
            assert ui.get("/").status_code == 200
        assert statements == ["SELECT"] * 3
        statements.clear()
        clock.advance(seconds=30)  # more than a minute since the login
        assert ui.get("/").status_code == 200
        assert statements == ["SELECT", "UPDATE"]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    with app.app_context():
        row = db.session.scalars(select(StaffSession)).one()
        assert row.last_seen_at == clock.now()
