"""JSON API for the SMS gateway: members' replies (TD, 退订, STOP…) withdraw SMS marketing consent."""
import hmac
from functools import wraps

from flask import current_app, request
from marshmallow import Schema, fields, validate

from ..auth.access import public
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..errors import Unauthorized
from . import consent

blp = Blueprint("sms_api", __name__, url_prefix="/api/v1/sms", description="SMS gateway callbacks")

_PRINTABLE = validate.Regexp(r"^[\x21-\x7e]+$", error="Use printable ASCII without spaces.")
_NO_CONTROL = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Control characters are not allowed.")


class SmsInboundSchema(Schema):
    mobile = fields.String(required=True, validate=[validate.Length(1, 32), _NO_CONTROL],
                           metadata={"description": "The sender, as the gateway has it (13800138000, +8613800138000)."})
    text = fields.String(required=True, validate=[validate.Length(max=1000), _NO_CONTROL],
                         metadata={"description": "What the member wrote."})
    message_id = fields.String(validate=[validate.Length(1, 64), _PRINTABLE],
                               metadata={"description": "The gateway's id of the reply, kept in the audit row."})


class SmsInboundResultSchema(Schema):
    result = fields.String(required=True, validate=validate.OneOf(
        ("withdrawn", "already_withdrawn", "not_an_opt_out", "unknown_mobile")))


def gateway_only(fn):
    """The gateway authenticates with `Authorization: Bearer <SMS_INBOUND_TOKEN>`, checked before
    the body is read; with no token configured the endpoint accepts nothing."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        expected = current_app.config.get("SMS_INBOUND_TOKEN") or ""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), expected.encode()):
            raise Unauthorized()
        return fn(*args, **kwargs)
    return wrapper


@blp.route("/inbound", methods=["POST"])
@public
@unit_of_work()
@gateway_only
@blp.arguments(SmsInboundSchema)
@blp.response(200, SmsInboundResultSchema)
def inbound(data):
    """A member's reply to one of our SMS, posted by the gateway.

    Authenticated with `Authorization: Bearer <SMS_INBOUND_TOKEN>` (the gateway's own secret, not a
    staff token; 401 otherwise). A reply that is exactly TD, T, 退订 or STOP (any case or width,
    trailing punctuation allowed) withdraws the member's SMS marketing consent, audited with source
    `sms_reply`; anything else is acknowledged and ignored. Always 200 for a well-formed reply, so a
    gateway does not retry an unknown number; a repeated reply changes nothing (`already_withdrawn`)."""
    return {"result": consent.sms_reply(data["mobile"], data["text"], address=request.remote_addr,
                                        message_id=data.get("message_id"))}
