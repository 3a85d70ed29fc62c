"""JSON API of crm.frontdesk (placeholder: filled in by issue 17)."""
from ..core.api import Blueprint

blp = Blueprint("frontdesk_api", __name__, url_prefix="/api/v1", description="frontdesk")
