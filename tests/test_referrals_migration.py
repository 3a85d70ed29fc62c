"""Migration 0018 gives every member who existed before it a referral code (random, unique,
without 0/O/1/I), and downgrades cleanly; on SQLite and PostgreSQL."""
import re

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from crm.extensions import db
from tests.conftest import make_app
from tests.test_migrations import fresh_url  # noqa: F401  (the fixture: a scratch database per backend)


def test_existing_members_get_unique_codes(fresh_url):  # noqa: F811
    app = make_app(fresh_url)
    with app.app_context():
        upgrade(revision="0017_campaign_holdout")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO stores (id, code, name, kind, timezone, address, phone, active, created_at) "
                              "VALUES (1, 'BJ01', 'S', 'restaurant', 'Asia/Shanghai', '', '', true, "
                              "CURRENT_TIMESTAMP)"))
            level = conn.execute(text("SELECT id FROM member_levels ORDER BY rank LIMIT 1")).scalar()
            for i in range(1, 1201):
                conn.execute(text(
                    "INSERT INTO members (id, name, mobile, mobile_last4, level_id, store_id, sales_rep, sms_consent, "
                    "email_consent, notes, created_at, updated_at) VALUES (:i, 'm', :mobile, '0000', :level, 1, '', "
                    "false, false, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    {"i": i, "mobile": f"139{i:08d}", "level": level})
        upgrade(revision="0018_referrals")
        with db.engine.connect() as conn:
            codes = conn.execute(text("SELECT referral_code FROM members")).scalars().all()
        assert len(codes) == len(set(codes)) == 1200
        assert all(re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", c) for c in codes)
        upgrade()
        downgrade(revision="0017_campaign_holdout")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM members")).scalar() == 1200
        db.engine.dispose()
