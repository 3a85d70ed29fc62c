"""Fetch a row by primary key or answer 404 with a message a person can read."""
from ..errors import NotFound
from ..extensions import db


def get_or_404(model, pk, message, code="not_found"):
    row = db.session.get(model, pk)
    if row is None:
        raise NotFound(message, code=code)
    return row
