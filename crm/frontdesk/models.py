"""Tables of crm.frontdesk: the reservations a hotel's PMS posts (issue 17.2).

A reservation is known by its number within its hotel: the PMS sends it again whenever it
changes (dates, room type, cancelled, checked in) and the row is updated in place, never
duplicated (the unique key on store and number decides). The guest is a member when the PMS
sent a member id, card or mobile; otherwise only the name the PMS gave."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db

STATUSES = ("booked", "cancelled", "checked_in")
NUMBER_MAX, NAME_MAX, ROOM_TYPE_MAX, NOTES_MAX, ROOMS_MAX = 64, 100, 64, 1000, 999


class Reservation(db.Model):
    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("store_id", "reservation_no", name="uq_reservations_store_no"),
                      CheckConstraint("departure >= arrival", name="dates"),
                      CheckConstraint(f"rooms BETWEEN 1 AND {ROOMS_MAX}", name="rooms"),
                      CheckConstraint("status IN ('booked', 'cancelled', 'checked_in')", name="status"),
                      Index("ix_reservations_store_arrival", "store_id", "arrival"))

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    reservation_no: Mapped[str] = mapped_column(String(NUMBER_MAX))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    guest_name: Mapped[str] = mapped_column(String(NAME_MAX), default="")
    arrival: Mapped[date]
    departure: Mapped[date]
    rooms: Mapped[int] = mapped_column(default=1)
    room_type: Mapped[str] = mapped_column(String(ROOM_TYPE_MAX), default="")
    status: Mapped[str] = mapped_column(String(12), default="booked")
    notes: Mapped[str] = mapped_column(Text, default="")  # from the PMS
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def nights(self) -> int:
        return (self.departure - self.arrival).days
