"""The reason a person gives for a void, refund or correction: required, and short enough
for the ledger rows that carry it (checked here, so the UI gets a message next to the field
instead of a database error)."""
from flask_babel import gettext as _

from ..errors import Invalid

MAX_LENGTH = 200


def required(reason: str | None, missing_message: str) -> str:
    """The reason, stripped; 422 `reason_required` if empty, `reason_too_long` past 200 characters."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(missing_message, code="reason_required", field="reason")
    if len(reason) > MAX_LENGTH:
        raise Invalid(_("Keep the reason to %(max)d characters.", max=MAX_LENGTH), code="reason_too_long",
                      field="reason", max=MAX_LENGTH)
    return reason
