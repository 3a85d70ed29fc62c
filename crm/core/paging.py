"""`?page=&per_page=` -> {"items", "page", "per_page", "total"}."""
from flask import request
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from ..extensions import db
from .bounds import MAX_ID
from .fields import Int


class PageArgs(Schema):
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=20, validate=validate.Range(min=1, max=200))


def page_arg() -> int:
    """A staff page's `?page=`: junk is page 1 and a huge number is clamped, so a page past the
    end shows the list's own "nothing here" (and its way back) rather than an error page."""
    return min(max(request.args.get("page", 1, type=int), 1), MAX_ID)


def paginate(stmt, page: int, per_page: int):
    """Run a select for one page and its total; returns (items, total).

    A page that is not full is the last one, so its total needs no COUNT(*): most
    look-ups (a mobile, a card) return one row and skip that second query."""
    offset = (page - 1) * per_page
    items = db.session.scalars(stmt.limit(per_page).offset(offset)).all()
    if 0 < len(items) < per_page or (page == 1 and not items):
        return items, offset + len(items)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return items, total


def page_schema(item_schema_cls, name):
    """A list envelope schema for the OpenAPI document."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema_cls)),
        "page": fields.Int(), "per_page": fields.Int(), "total": fields.Int(),
    })
