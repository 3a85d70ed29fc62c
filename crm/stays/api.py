"""JSON API of crm.stays (placeholder: filled in by issue 17)."""
from ..core.api import Blueprint

blp = Blueprint("stays_api", __name__, url_prefix="/api/v1", description="stays")
