"""Secrets: production refuses to start on a missing or well-known SECRET_KEY or card key;
development makes its own random key; the card signing key rotates with a grace period."""
import os
import stat
import subprocess

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from crm import create_app
from crm.auth import keys
from crm.cards import codes
from crm.cards.models import Card
from crm.extensions import db
from tests.servers import ROOT, SECRET_KEY, VENV_BIN, free_port, gunicorn

OLD_CARD_KEY = "card-key-2025-Vb7Nq2Wx9Lk4Pz6Rt3Mh8Jd"
NEW_CARD_KEY = "card-key-2026-Hs5Gf1Qa8Zc3Xw7Ny2Kp6Tm"
SECRET_SETTINGS = ("SECRET_KEY", "CRM_ENV", "FLASK_DEBUG", "CARD_SIGNING_KEY", "CARD_SIGNING_KEYS_OLD")


def production_env(tmp_path, **settings):
    """The environment of a production start with these settings. The others are set empty
    rather than left out, so a developer's shell or .env cannot fill them in."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_SETTINGS}
    env.update({k: "" for k in SECRET_SETTINGS})
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    env.update(settings)
    return env


def test_gunicorn_without_secret_key_exits_with_a_message_naming_it(tmp_path):
    proc = subprocess.run([str(VENV_BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{free_port()}",
                           "wsgi:app"], cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    # gunicorn.conf.py preloads the app, so gunicorn's master reports it as "Error: <message>"
    assert any(line.removeprefix("Error: ").startswith("SECRET_KEY is not set: set SECRET_KEY to a long random value")
               for line in proc.stderr.splitlines()), proc.stderr[-2000:]


def test_importing_the_app_with_the_old_public_default_fails(tmp_path):
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", "import wsgi"], cwd=ROOT,
                          env=production_env(tmp_path, SECRET_KEY="dev-only-not-secret"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "SECRET_KEY is a well-known default value" in proc.stderr.strip().splitlines()[-1]


def test_gunicorn_starts_with_strong_keys(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=SECRET_KEY, CARD_SIGNING_KEY=NEW_CARD_KEY,
                         CARD_SIGNING_KEYS_OLD=f"{OLD_CARD_KEY}, ")
    with gunicorn(env, workers=1) as base:
        assert requests.get(base + "/healthz", timeout=10).json()["status"] == "ok"


@pytest.mark.parametrize("settings, message", [
    ({"SECRET_KEY": "changeme"}, "SECRET_KEY is a well-known default value"),
    ({"SECRET_KEY": "Short-Key-2026"}, "SECRET_KEY is too short (14 characters; at least 32)"),
    ({"SECRET_KEY": "ab" * 20}, "SECRET_KEY is not random"),
    ({"SECRET_KEY": "dev-only-not-secret" * 2}, "SECRET_KEY is a phrase"),
    ({"SECRET_KEY": "your-secret-key-here-please-change-it-now"}, "SECRET_KEY is a phrase"),
    ({"SECRET_KEY": "Password1234567890Password1234567890"}, "SECRET_KEY is a phrase"),
    ({"SECRET_KEY": "0123456789" * 4}, "SECRET_KEY is not random (a repeated or sequential pattern)"),
    ({"SECRET_KEY": "abcdefghijklmnopqrstuvwxyzabcdefghijkl"}, "SECRET_KEY is not random"),
    ({"CARD_SIGNING_KEY": "change-me"}, "CARD_SIGNING_KEY is a well-known default value"),
    ({"CARD_SIGNING_KEY": NEW_CARD_KEY, "CARD_SIGNING_KEYS_OLD": f"{OLD_CARD_KEY},bench"},
     "CARD_SIGNING_KEYS_OLD holds a key that is a well-known default value"),
])
def test_production_refuses_weak_keys(settings, message):
    settings = {"SECRET_KEY": SECRET_KEY, **settings}
    with pytest.raises(keys.InsecureConfiguration) as refused:
        create_app("config.Config", CRM_ENV="production", DEBUG=False, TESTING=False,
                   SQLALCHEMY_DATABASE_URI="sqlite://", **settings)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_random_keys_pass():
    import secrets
    assert [k for k in (secrets.token_urlsafe(32) for _ in range(500)) if keys.weakness(k)] == []


def test_development_makes_a_random_key_once_and_keeps_it_private(tmp_path):
    def start(env):
        app = Flask("crm_keys_check", instance_path=str(tmp_path / "instance"))
        app.config.update(CRM_ENV=env, SECRET_KEY=None, CARD_SIGNING_KEYS_OLD="")
        keys.check(app)
        return app.config["SECRET_KEY"]

    first = start("development")
    assert keys.weakness(first) is None
    assert start("development") == first  # kept: logins survive a restart of `make run`
    key_file = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(keys.InsecureConfiguration, match="^SECRET_KEY is not set"):
        start("production")  # the development key is never picked up in production


def test_card_codes_signed_with_an_old_key_verify_while_it_is_listed(app, monkeypatch, login_api, member_factory,
                                                                      issue_card):
    member = member_factory()
    assert issue_card(member["id"]).status_code == 201
    with app.app_context():
        card_id, card_no = db.session.execute(select(Card.id, Card.card_no)
                                              .where(Card.member_id == member["id"])).one()

    def draw():
        with app.test_request_context():
            return codes.qr_payload(card_no), codes.dynamic_payload(card_id)

    def scan(code):
        return login_api("cashier").post("/api/v1/cards/scan", json={"code": code})

    monkeypatch.setitem(app.config, "CARD_SIGNING_KEY", OLD_CARD_KEY)
    monkeypatch.setitem(app.config, "CARD_SIGNING_KEYS_OLD", [])
    printed, phone = draw()
    assert scan(printed).json["id"] == member["id"]

    # Rotation: the new key signs, the old one still verifies.
    monkeypatch.setitem(app.config, "CARD_SIGNING_KEY", NEW_CARD_KEY)
    monkeypatch.setitem(app.config, "CARD_SIGNING_KEYS_OLD", [OLD_CARD_KEY])
    reprinted, fresh_phone = draw()
    assert reprinted != printed
    for code in (printed, phone, reprinted, fresh_phone):
        assert scan(code).json["id"] == member["id"]

    # Grace period over: the old key is removed, codes it signed are refused.
    monkeypatch.setitem(app.config, "CARD_SIGNING_KEYS_OLD", [])
    for code in (printed, phone):
        r = scan(code)
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_code"
    assert scan(reprinted).json["id"] == member["id"]
