from marshmallow import Schema, fields, validate

from ..core.fields import Bool, Int
from .models import KINDS


class StoreSchema(Schema):
    id = fields.Int(dump_only=True)
    code = fields.Str(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_\-]{2,32}$", error="2–32 letters, digits, dash or underscore."))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    rooms = Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=100000))
    timezone = fields.Str(load_default=None)
    address = fields.Str(load_default="", validate=validate.Length(max=255))
    phone = fields.Str(load_default="", validate=validate.Length(max=32))
    active = fields.Bool(dump_only=True)


class StoreUpdateSchema(Schema):
    name = fields.Str(validate=validate.Length(min=1, max=100))
    rooms = Int(allow_none=True, validate=validate.Range(min=1, max=100000))
    timezone = fields.Str()
    address = fields.Str(validate=validate.Length(max=255))
    phone = fields.Str(validate=validate.Length(max=32))
    active = Bool()
