"""Marshmallow fields for member input, shared by the JSON API and the UI forms."""
from datetime import date

from flask_babel import gettext as _
from marshmallow import ValidationError, fields

from ..core.phones import mobile_for_viewer, normalise_mobile, phone_for_viewer
from ..core.timeutil import local_today


class Mobile(fields.Str):
    """Validates and normalises a mobile (mainland 11 digits or +country)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_mobile(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ViewerMobile(fields.Str):
    """A member's mobile as the current user may see it (masked for roles that do not call guests)."""

    def __init__(self, **kwargs):
        super().__init__(dump_only=True, metadata={
            "description": "In full for front desk, manager and admin; 138****8000 for the others."}, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(mobile_for_viewer(value), attr, obj, **kwargs)


class ViewerPhone(fields.Str):
    """A contact phone: taken as typed, shown like a member's mobile (masked for the same roles)."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"description": "Shown in full to front desk, manager and admin; masked "
                                                  "(138****8000, or ****6688 for other numbers) to the others."},
                         **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(phone_for_viewer(value), attr, obj, **kwargs)


class Birthday(fields.Field):
    """"MM-DD" or "YYYY-MM-DD" <-> (month, day, year|None). 29 Feb is fine without a year."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value

    def _deserialize(self, value, attr, data, **kwargs):
        if value in (None, ""):
            return None
        parts = str(value).strip().lstrip("-").split("-")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValidationError(_("Use MM-DD or YYYY-MM-DD.")) from None
        if len(numbers) == 2:
            year, (month, day) = None, numbers
        elif len(numbers) == 3:
            year, month, day = numbers
        else:
            raise ValidationError(_("Use MM-DD or YYYY-MM-DD."))
        try:
            date(year or 2000, month, day)  # 2000 is a leap year, so 02-29 passes without a year
        except ValueError:
            raise ValidationError(_("No such date.")) from None
        if year is not None and not 1900 <= year <= local_today().year:
            raise ValidationError(_("The year of birth is not plausible."))
        return (month, day, year)
