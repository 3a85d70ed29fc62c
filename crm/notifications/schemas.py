from marshmallow import Schema, fields, validate

from ..campaigns.models import DELIVERY_STATUSES
from ..core.fields import Bool, Int
from .models import CHANNELS, KINDS


class NotificationTemplateSchema(Schema):
    kind = fields.Str(metadata={"description": "One of " + ", ".join(KINDS) + "."})
    channel = fields.Str(metadata={"description": "sms or email."})
    subject = fields.Str(metadata={"description": "Email subject (unused for SMS)."})
    body = fields.Str(metadata={"description": "The text; placeholders in braces, e.g. {name}, {amount}."})
    enabled = fields.Bool(metadata={"description": "Off: this kind sends nothing on this channel."})
    customised = fields.Bool(metadata={"description": "False while the shipped default text is in use."})
    placeholders = fields.List(fields.Str(), metadata={"description": "The placeholders this kind fills."})


class NotificationTemplateUpdateSchema(Schema):
    """PATCH body: any of subject, body and the switch. Placeholders are checked against the kind's."""
    subject = fields.Str(validate=validate.Length(max=200))
    body = fields.Str(validate=validate.Length(min=1, max=2000))
    enabled = Bool()


class NotificationQuery(Schema):
    limit = Int(load_default=20, validate=validate.Range(min=1, max=200))


class NotificationSchema(Schema):
    kind = fields.Str(metadata={"description": "One of " + ", ".join(KINDS) + "."})
    channel = fields.Str(metadata={"description": "One of " + ", ".join(CHANNELS) + "."})
    status = fields.Str(metadata={"description": "One of " + ", ".join(DELIVERY_STATUSES) + "."})
    reason = fields.Function(lambda n: n["reason_text"],
                             metadata={"description": "Why it was skipped or failed, in words."})
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    subject = fields.Str()
    body = fields.Str()
