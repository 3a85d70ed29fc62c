"""After logging in each role starts where its shift starts (issue 13); a `next` link still wins."""
import re

import pytest

from tests.conftest import PASSWORD
from tests.test_ui import CSRF


def _log_in(client, username, query=""):
    token = CSRF.search(client.get(f"/login{query}").data)[1].decode()
    return client.post(f"/login{query}", data={"username": username, "password": PASSWORD, "csrf_token": token})


@pytest.mark.parametrize("role, landing", [("cashier", "/till"), ("marketing", "/marketing/"),
                                           ("front_desk", "/"), ("manager", "/reports/"), ("admin", "/")])
def test_each_role_lands_on_its_own_page(app, staff, role, landing):
    client = app.test_client()
    r = _log_in(client, staff[role])
    assert r.status_code == 302 and r.location == landing
    assert client.get(r.location, follow_redirects=True).status_code == 200  # and may open it


def test_a_next_link_still_wins(app, staff, member_factory):
    m = member_factory()
    client = app.test_client()
    asked = client.get(f"/members/{m['id']}")  # logged out: sent to log in, with the page to come back to
    assert asked.status_code == 302 and "/login?next=" in asked.location
    query = re.search(r"/login(\?.*)$", asked.location)[1]
    r = _log_in(client, staff["cashier"], query)
    assert r.status_code == 302 and r.location == f"/members/{m['id']}"


def test_a_next_link_elsewhere_goes_to_the_landing_page_instead(app, staff):
    r = _log_in(app.test_client(), staff["cashier"], "?next=https://evil.example/")
    assert r.status_code == 302 and r.location == "/till"
