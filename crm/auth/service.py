"""Staff accounts, password checks and API tokens (the rules; no request here)."""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..core import audit, refcache
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.timeutil import as_utc, utcnow
from ..errors import Conflict, Invalid, Unauthorized
from ..extensions import db
from . import sessions
from .models import ApiToken, Staff
from .roles import ROLES

MIN_PASSWORD = 8
# Checked against when the username is unknown, so timing does not reveal which names exist
# (one per hash method: it must cost what checking a real password costs).
_DUMMY_HASHES = {}


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _dummy_hash() -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash("not-a-real-password", method=method)
    return _DUMMY_HASHES[method]


def _check_password(password: str):
    if len(password or "") < MIN_PASSWORD:
        raise Invalid(_("A password needs at least %(n)d characters.", n=MIN_PASSWORD),
                      code="weak_password", field="password")


def _check_role(role: str):
    if role not in ROLES:
        raise Invalid(_("Role must be one of: %(roles)s.", roles=", ".join(ROLES)), code="invalid_role", field="role")


def create_staff(actor: Actor, *, username, password, role, name="", store_id=None) -> Staff:
    """Create a staff account with a hashed password."""
    username = (username or "").strip().lower()
    if not username:
        raise Invalid(_("Enter a username."), code="invalid_username", field="username")
    _check_role(role)
    _check_password(password)
    if db.session.scalar(select(Staff.id).where(Staff.username == username)):
        raise Conflict(_("That username is taken."), code="username_taken", field="username")
    staff = Staff(username=username, password_hash=_hash(password),
                  role=role, name=name or username, store_id=store_id)
    db.session.add(staff)
    db.session.flush()
    audit.record(actor, "staff.create", entity=staff, role_granted=role)
    return staff


def update_staff(actor: Actor, staff_id: int, **changes) -> Staff:
    """Change role, name, home store, active flag or password; a password reset or deactivation
    revokes the account's API tokens and ends its UI sessions. Admins cannot lock themselves
    out (deactivate or demote their own account)."""
    staff = get_staff(staff_id)
    if staff.id == actor.staff_id and (changes.get("active") is False or changes.get("role", staff.role) != staff.role):
        raise Conflict(_("You cannot deactivate your own account or change your own role."), code="own_account",
                       field="active" if "active" in changes else "role")
    if "role" in changes:
        _check_role(changes["role"])
        staff.role = changes["role"]
    if "name" in changes:
        staff.name = changes["name"]
    if "store_id" in changes:
        staff.store_id = changes["store_id"]
    if "password" in changes:
        _check_password(changes["password"])
        staff.password_hash = _hash(changes["password"])
        revoke_all_tokens(staff.id)
        sessions.revoke_all(staff.id)
    if "active" in changes:
        staff.active = bool(changes["active"])
        if not staff.active:
            revoke_all_tokens(staff.id)
            sessions.revoke_all(staff.id)
    audit.record(actor, "staff.update", entity=staff,
                 fields=sorted(k if k != "password" else "password(reset)" for k in changes))
    return staff


def get_staff(staff_id: int) -> Staff:
    return get_or_404(Staff, staff_id, _("No such staff account."))


def list_staff():
    return select(Staff).order_by(Staff.username)


def authenticate(username: str, password: str) -> Staff:
    """Return the active staff member for these credentials or raise Unauthorized."""
    staff = db.session.scalar(select(Staff).where(Staff.username == (username or "").strip().lower()))
    if staff is None:
        check_password_hash(_dummy_hash(), password or "")
        raise Unauthorized(_("Wrong username or password."), code="invalid_credentials")
    if not check_password_hash(staff.password_hash, password or "") or not staff.active:
        raise Unauthorized(_("Wrong username or password."), code="invalid_credentials")
    staff.last_login_at = utcnow()
    return staff


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(staff: Staff, hours: int) -> tuple[str, ApiToken]:
    """A new random Bearer token; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    row = ApiToken(staff_id=staff.id, token_hash=_hash_token(token),
                   expires_at=utcnow() + timedelta(hours=hours))
    db.session.add(row)
    return token, row


def staff_for_token(token: str) -> Staff | None:
    """The staff member a live token belongs to. Tokens are kept per worker until any token
    or staff row changes (a login, a logout, a role change: core/refcache.py)."""
    digest = _hash_token(token)
    found = refcache.get("auth", digest, lambda: _token_entry(digest))
    if found is None:
        return None
    staff, expires_at, revoked_at = found
    if revoked_at is not None or as_utc(expires_at) <= utcnow() or not staff.active:
        return None
    return staff


def _token_entry(digest: str):
    """(staff, expiry, revocation) of a token; the staff member is a detached copy with its
    store, shared by this worker's requests: read it, never change it or add it to a session."""
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None:
        return None
    return refcache.detached_copy(row.staff, store=row.staff.store), row.expires_at, row.revoked_at


def revoke_token(token: str):
    db.session.execute(update(ApiToken).where(ApiToken.token_hash == _hash_token(token))
                       .values(revoked_at=utcnow()))


def revoke_all_tokens(staff_id: int):
    db.session.execute(update(ApiToken).where(ApiToken.staff_id == staff_id,
                                              ApiToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
