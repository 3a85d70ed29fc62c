"""JSON API of crm.dayend (placeholder: filled in by issue 17)."""
from ..core.api import Blueprint

blp = Blueprint("dayend_api", __name__, url_prefix="/api/v1", description="dayend")
