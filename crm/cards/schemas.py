from marshmallow import Schema, fields, validate

from ..core.money import Money
from ..members.schemas import LevelRefSchema
from .models import PAYMENT_METHODS
from .privacy import CardNumber, QrPayload


class CardSchema(Schema):
    card_no = CardNumber()
    status = fields.Str()
    member_id = fields.Int()
    qr_payload = QrPayload()
    issued_at = fields.AwareDateTime()
    issued_store_code = fields.Function(lambda c: c.issued_store.code)
    status_changed_at = fields.AwareDateTime()
    replaces = CardNumber(allow_none=True, metadata={"description": "The card this one replaced (masked like "
                                                                    "card_no), or null."})


class CardIssueSchema(Schema):
    store_code = fields.Str(required=True)
    fee_paid = Money(required=True)
    payment_method = fields.Str(required=True, validate=validate.OneOf(PAYMENT_METHODS))


class CardReplaceSchema(CardIssueSchema):
    reason = fields.Str(load_default="", validate=validate.Length(max=200))


class CardActionSchema(Schema):
    reason = fields.Str(load_default="", validate=validate.Length(max=200))


class ScanSchema(Schema):
    code = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class ScanResultSchema(Schema):
    """What the cashier needs on screen after a scan."""
    id = fields.Int(attribute="member.id")
    name = fields.Str(attribute="member.name")
    level = fields.Nested(LevelRefSchema, attribute="member.level")
    card_no = CardNumber()
    points_balance = fields.Int(metadata={"description": "Points usable now."})
    wallet_balance = Money(metadata={"description": "Stored value (principal + bonus)."})
    birthday_today = fields.Bool()
