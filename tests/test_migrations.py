"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from crm.extensions import db
from tests.conftest import PG_OK, PG_WHY, create_scratch_pg_database, make_app


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    if request.param == "postgresql":
        if not PG_OK:
            pytest.skip(f"PostgreSQL unreachable ({PG_WHY})")
        url, drop = create_scratch_pg_database()
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"


def test_migrations_match_models(fresh_url):
    app = make_app(fresh_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diff = compare_metadata(ctx, db.metadata)
        db.engine.dispose()
    assert diff == []
