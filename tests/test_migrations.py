"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from crm.extensions import db
from tests.conftest import make_app, scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    url, drop = scratch_database(request.param, tmp_path)
    yield url
    drop()


def test_migrations_match_models(fresh_url):
    app = make_app(fresh_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diff = compare_metadata(ctx, db.metadata)
        db.engine.dispose()
    assert diff == []
