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
