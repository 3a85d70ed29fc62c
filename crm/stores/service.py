"""Stores: create, change, look up."""
from flask_babel import gettext as _
from sqlalchemy import select

from ..core import audit, refcache
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.timeutil import default_tz_name, is_valid_timezone
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .models import KINDS, Store


def _validate(kind, rooms, tz):
    if kind not in KINDS:
        raise Invalid(_("A store is a restaurant or a hotel."), code="invalid_kind", field="kind")
    if kind == "hotel" and not rooms:
        raise Invalid(_("A hotel needs its number of rooms."), code="rooms_required", field="rooms")
    if kind == "restaurant" and rooms:
        raise Invalid(_("Only hotels have rooms."), code="rooms_not_allowed", field="rooms")
    if not is_valid_timezone(tz):
        raise Invalid(_("Unknown time zone."), code="invalid_timezone", field="timezone")


def create_store(actor: Actor, *, code, name, kind, rooms=None, timezone=None, address="", phone="") -> Store:
    """Add a store; codes are unique and are what POS terminals send."""
    code = code.strip().upper()
    timezone = timezone or default_tz_name()
    _validate(kind, rooms, timezone)
    if db.session.scalar(select(Store.id).where(Store.code == code)):
        raise Conflict(_("A store with that code exists."), code="store_code_taken", field="code")
    store = Store(code=code, name=name.strip(), kind=kind, rooms=rooms if kind == "hotel" else None,
                  timezone=timezone, address=address, phone=phone)
    db.session.add(store)
    db.session.flush()
    audit.record(actor, "store.create", entity=store, store_id=store.id, code=code)
    return store


def update_store(actor: Actor, code: str, **changes) -> Store:
    store = get_by_code(code, as_404=True)
    merged = {"kind": store.kind, "rooms": store.rooms, "timezone": store.timezone, **changes}
    _validate(merged["kind"], merged["rooms"], merged["timezone"])
    for field, value in changes.items():
        setattr(store, field, value)
    audit.record(actor, "store.update", entity=store, store_id=store.id, fields=sorted(changes))
    return store


def get_by_code(code: str, *, active_only=False, as_404=False) -> Store:
    """The store with this code; unknown codes are a 422 in a body, a 404 in a path."""
    code = (code or "").strip().upper()
    cached = refcache.get("stores", code, lambda: _columns_by_code(code))
    store = refcache.attach(Store, cached) if cached else None
    if store is None and as_404:
        raise NotFound(_("No such store."))
    if store is None or (active_only and not store.active):
        raise Invalid(_("Unknown store code %(code)s.", code=code), code="unknown_store", field="store_code")
    return store


def _columns_by_code(code: str) -> dict | None:
    store = db.session.scalar(select(Store).where(Store.code == code))
    return refcache.columns_of(store) if store else None


def get_store(store_id: int) -> Store:
    return get_or_404(Store, store_id, _("No such store."))


def timezone_of(store_id: int | None) -> str | None:
    """A store's time zone, kept per worker (a card scan asks for the till's on every scan)."""
    if store_id is None:
        return None
    return refcache.get("stores", ("timezone", store_id),
                        lambda: db.session.scalar(select(Store.timezone).where(Store.id == store_id)))


def list_stores():
    return db.session.scalars(select(Store).order_by(Store.code)).all()
