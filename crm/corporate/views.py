"""Staff pages of crm.corporate (placeholder: filled in by issue 17)."""
from flask import Blueprint

bp = Blueprint("corporate", __name__, url_prefix="/corporate")
