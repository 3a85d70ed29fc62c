"""Who is acting: passed explicitly to every service that changes data."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    staff_id: int | None
    username: str
    role: str
    store_id: int | None = None
    address: str | None = None

    @classmethod
    def system(cls, name="system"):
        """For CLI jobs and the scheduler: recorded as role `system`."""
        return cls(staff_id=None, username=name, role="system")

    @classmethod
    def of_staff(cls, staff_id: int | None, address: str | None, *, otherwise: str):
        """A background job acting for the staff member who started it (their name and role in
        the audit log), or as the system job `otherwise` if that account is gone."""
        from ..auth.models import Staff  # here, not at the top: core is imported by auth
        from ..extensions import db
        staff = db.session.get(Staff, staff_id) if staff_id else None
        if staff is None:
            return cls.system(otherwise)
        return cls(staff_id=staff.id, username=staff.username, role=staff.role, store_id=staff.store_id,
                   address=address or None)
