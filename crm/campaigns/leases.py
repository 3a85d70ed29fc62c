"""Leadership among scheduler processes: a lease of seconds in a table, not a lock.

One row per lease name (scheduler_leases). The leader renews it every few seconds with
a conditional UPDATE (holder and generation still ours); a standby takes it with a
conditional UPDATE that only matches once it has expired, and every take raises the
generation. The row count of the UPDATE decides, so it works the same on SQLite and
PostgreSQL and survives a database restart (an advisory lock would silently vanish).

The leader may act only while it can *prove* it leads: until the moment its last
successful renewal started plus the lease, less a margin, on its own monotonic clock —
strictly before any standby can see the lease expired. A failed renewal (database away,
read-only, slow) ends the proof at once. The generation is a fencing token: work is
committed only while `fence()` finds the lease still at that generation, under a shared
row lock that makes a take wait until the work has committed.

Processes must share a wall clock within a fraction of the lease (NTP), as on one host.
"""
import contextlib
import logging
import os
import socket
import time as clock
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..core.timeutil import utcnow
from ..extensions import db
from .models import SchedulerLease

log = logging.getLogger("crm.scheduler")
SCHEDULER = "scheduler"


class LostLeadership(Exception):
    """The lease moved on (or cannot be shown to be ours): the work in hand is not committed."""


def holder_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, name: str = SCHEDULER, holder: str | None = None, *, seconds: float = 15.0):
        self.name, self.holder, self.seconds = name, holder or holder_id(), seconds
        self.margin = max(seconds / 5, 0.5)  # the proof ends this long before others may take over
        self.generation: int | None = None  # the generation we hold (or held, until someone takes it)
        self._proved_until = 0.0  # monotonic
        self._proof_end_wall = 0.0  # the same as epoch seconds, for the log

    def proves(self) -> bool:
        """Whether this process may act as the leader right now."""
        return self.generation is not None and clock.monotonic() < self._proved_until

    def proof_end(self) -> float:
        """When the proof ends or ended, as epoch seconds: for the log, by which failover is judged."""
        return self._proof_end_wall

    def lapse(self):
        """Stop claiming leadership now (a renewal failed); the generation is kept to renew with."""
        if self._proved_until:
            self._proof_end_wall = min(self._proof_end_wall, clock.time())
        self._proved_until = 0.0

    def acquire(self) -> bool:
        """Renew the lease if it is ours, else take it if it has expired; commits. Returns
        whether we lead. Database errors propagate, after the proof has lapsed."""
        started = clock.monotonic()
        try:
            ok = self._renew() if self.generation is not None else False
            if not ok:
                self.generation = None
                ok = self._take()
            db.session.commit()
        except BaseException:
            self.lapse()
            with contextlib.suppress(Exception):  # the connection may be gone: the error that matters is the first
                db.session.rollback()
            raise
        if ok:
            self._proved_until = started + self.seconds - self.margin
            self._proof_end_wall = clock.time() + (self._proved_until - clock.monotonic())
        else:
            self.lapse()
        return ok

    def _renew(self) -> bool:
        now = utcnow()
        return db.session.execute(update(SchedulerLease).where(
            SchedulerLease.name == self.name, SchedulerLease.holder == self.holder,
            SchedulerLease.generation == self.generation).values(
            expires_at=now + timedelta(seconds=self.seconds), heartbeat_at=now)).rowcount == 1

    def _take(self) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=self.seconds)
        taken = db.session.execute(update(SchedulerLease).where(
            SchedulerLease.name == self.name, SchedulerLease.expires_at <= now).values(
            holder=self.holder, generation=SchedulerLease.generation + 1, expires_at=until,
            heartbeat_at=now)).rowcount == 1
        if not taken:
            if db.session.get(SchedulerLease, self.name) is not None:
                return False  # someone else leads
            try:
                with db.session.begin_nested():
                    db.session.add(SchedulerLease(name=self.name, holder=self.holder, generation=1,
                                                  expires_at=until, heartbeat_at=now))
            except IntegrityError:  # another process created it a moment ago
                return False
        self.generation = db.session.scalar(select(SchedulerLease.generation).where(
            SchedulerLease.name == self.name, SchedulerLease.holder == self.holder))
        return self.generation is not None

    def release(self):
        """Let a standby take over at once (a clean stop); commits."""
        if self.generation is not None:
            now = utcnow()
            db.session.execute(update(SchedulerLease).where(
                SchedulerLease.name == self.name, SchedulerLease.holder == self.holder,
                SchedulerLease.generation == self.generation).values(expires_at=now))
            db.session.commit()
        self.lapse()


def fence(generation: int | None, name: str = SCHEDULER):
    """Raise LostLeadership unless the lease is still at `generation`; call just before a
    commit. On PostgreSQL the row stays share-locked until then, so a standby's take waits
    for this transaction and cannot slip in between the check and the commit. None: a
    caller outside the lease (tests, `tick()` called directly) is not fenced."""
    if generation is None:
        return
    current = db.session.scalar(select(SchedulerLease.generation).where(SchedulerLease.name == name)
                                .with_for_update(read=True))
    if current != generation:
        raise LostLeadership(f"lease {name} is at generation {current}, not {generation}")


def last_seen(name: str = SCHEDULER):
    """When the leading scheduler last renewed its lease (aware UTC), or None if no scheduler
    has ever run; with `expires_at`, whether one leads now. For health pages and banners."""
    row = db.session.execute(select(SchedulerLease.heartbeat_at, SchedulerLease.expires_at, SchedulerLease.holder,
                                    SchedulerLease.generation).where(SchedulerLease.name == name)).first()
    return None if row is None else row._asdict()
