from marshmallow import Schema, fields, validate

from ..core.fields import Date, Id, Int
from .models import ACTIONS, STATUSES
from .service import MAX_POINTS, TAG_LENGTH

SKIP_REASONS = ["out_of_stock", "coupon_type_inactive", "already_tagged", "not_tagged", "already_at_level",
                "member_gone"]
UNDO = ["reversed", "partly", "kept_used", "unchanged"]


class BulkJobCreateSchema(Schema):
    audience_id = Id(required=True, metadata={"description": "the saved audience; its members are fixed now"})
    action = fields.Str(required=True, validate=validate.OneOf(ACTIONS), metadata={
        "description": "points: grant `points` (expiring at the end of `expires_on`, else by the programme's "
                       "rule) · coupon: one coupon of `coupon_type` each, while its stock lasts · tag_add / "
                       "tag_remove: `tag` · level: move to `level` (managers only)"})
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    points = Int(validate=validate.Range(min=1, max=MAX_POINTS))
    expires_on = Date(metadata={"description": "last day the granted points can be used"})
    coupon_type = fields.Str(validate=validate.Length(min=1, max=32))
    tag = fields.Str(validate=validate.Length(min=1, max=TAG_LENGTH))
    level = fields.Str(validate=validate.Length(min=1, max=32), metadata={"description": "a level code"})


class BulkReverseSchema(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class BulkJobSchema(Schema):
    """A bulk job: queued → running → done; after a manager's reversal reversing → reversed."""
    id = fields.Int()
    action = fields.Str(metadata={"enum": list(ACTIONS)})
    params = fields.Dict(metadata={"description": "the action's parameters as checked"})
    audience_id = fields.Int(allow_none=True)
    audience_name = fields.Str()
    reason = fields.Str()
    status = fields.Str(metadata={"enum": list(STATUSES)})
    total = fields.Int(metadata={"description": "members in the snapshot taken when the job was created"})
    done = fields.Int(metadata={"description": "members through the run (committed)"})
    applied = fields.Int()
    skipped = fields.Int()
    skipped_by_reason = fields.Dict(keys=fields.Str(metadata={"enum": SKIP_REASONS}), values=fields.Int())
    undone = fields.Int(metadata={"description": "applied effects through the reversal (committed)"})
    undo_counts = fields.Dict(keys=fields.Str(metadata={"enum": UNDO}), values=fields.Int(), metadata={
        "description": "reversed; partly (points already spent: see shortfall); kept_used (coupon already "
                       "used); unchanged (tag or level changed since by someone else)"})
    shortfall = fields.Int(metadata={"description": "granted points already spent, so not taken back"})
    failure = fields.Str(allow_none=True, metadata={"enum": ["stopped", None]})
    created_by = fields.Int(allow_none=True)
    created_at = fields.AwareDateTime()
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    reversed_by = fields.Int(allow_none=True)
    reverse_reason = fields.Str(allow_none=True)
    reverse_requested_at = fields.AwareDateTime(allow_none=True)
    reversed_at = fields.AwareDateTime(allow_none=True)
    status_url = fields.Str(metadata={"description": "GET it for the job's progress"})
