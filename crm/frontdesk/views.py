"""Staff pages of crm.frontdesk (placeholder: filled in by issue 17)."""
from flask import Blueprint

bp = Blueprint("frontdesk", __name__, url_prefix="/frontdesk")
