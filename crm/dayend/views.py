"""Staff pages of crm.dayend (placeholder: filled in by issue 17)."""
from flask import Blueprint

bp = Blueprint("dayend", __name__, url_prefix="/dayend")
