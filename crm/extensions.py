"""Flask extensions, created once and bound to the app in create_app()."""
from datetime import datetime, timezone

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .core.api import Api

# Stable constraint names on SQLite and PostgreSQL alike (set before the first migration).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timestamps go in as UTC and always come out timezone-aware, on SQLite too
    (which has no time zone type and would otherwise hand back naive values)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# Every `Mapped[datetime]` column is a UTCDateTime (TIMESTAMPTZ on PostgreSQL).
db.Model.registry.update_type_annotation_map({datetime: UTCDateTime})
def _render_item(type_, obj, autogen_context):
    """Write UTCDateTime into migrations as a plain DateTime(timezone=True), so migration
    files never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
api = Api()
