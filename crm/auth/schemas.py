from marshmallow import Schema, fields, validate

from ..core.fields import Bool
from .roles import ROLES


class TokenRequestSchema(Schema):
    username = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    password = fields.Str(required=True, validate=validate.Length(min=1, max=256))


class TokenSchema(Schema):
    token = fields.Str()
    role = fields.Str()
    expires_at = fields.AwareDateTime()


class StaffSchema(Schema):
    id = fields.Int(dump_only=True)
    username = fields.Str()
    name = fields.Str()
    role = fields.Str()
    store_code = fields.Function(lambda s: s.store.code if s.store else None)
    active = fields.Bool()
    last_login_at = fields.AwareDateTime(allow_none=True)


class StaffCreateSchema(Schema):
    username = fields.Str(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_.\-]{2,64}$", error="2–64 letters, digits, dot, dash or underscore."))
    password = fields.Str(required=True, load_only=True)
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    name = fields.Str(load_default="", validate=validate.Length(max=100))
    store_code = fields.Str(load_default=None, allow_none=True)


class StaffUpdateSchema(Schema):
    password = fields.Str(load_only=True)
    role = fields.Str(validate=validate.OneOf(ROLES))
    name = fields.Str(validate=validate.Length(max=100))
    store_code = fields.Str(allow_none=True)
    active = Bool()
