"""JSON API of crm.corporate (placeholder: filled in by issue 17)."""
from ..core.api import Blueprint

blp = Blueprint("corporate_api", __name__, url_prefix="/api/v1", description="corporate")
