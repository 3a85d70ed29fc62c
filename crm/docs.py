"""Interactive API docs at /api/v1/docs/, served from the flask-swagger-ui package's own
files (no CDN), so the page works without internet access."""
from flask_swagger_ui import get_swaggerui_blueprint

bp = get_swaggerui_blueprint("/api/v1/docs", "/api/v1/openapi.json",
                             config={"app_name": "Membership CRM API", "persistAuthorization": True})


def document_security(api):
    """Tell the OpenAPI document (and so the docs page) how to authenticate."""
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer",
                       "description": "POST /api/v1/auth/token, then send the token here."})
    api.spec.options["security"] = [{"bearerAuth": []}]
