"""Members brought from a legacy system or a spreadsheet (issue 16): the `members` kind of
the CSV import jobs (reports/import_jobs.py runs it: a checking pass, then a writing pass a
chunk per transaction, with progress).

A row is a member with their card, level, birthday, consents and opening balances. Who a
row is: its mobile and its card number together. A row whose mobile and card both belong to
one member already is that member imported before: it is left as it is (skipped), so
sending the same file again changes nothing; a row whose mobile or card belongs to some
other member is an error. New members are written in bulk, a chunk at a time (members,
cards, accounts, entries, lots and audit rows each as one executemany), never as ORM
objects: 100,000 rows keep memory flat.

Opening balances are ledger entries of kind `opening`: points as an entry with a lot that
expires on the file's date (the programme's default expiry when the file gives none), stored
value as an entry on the principal and on the bonus account; each account's balance is set
to its one entry, so `crm audit` stays clean. A card number without our check digit is
stored as it is with cards.legacy, and look-ups find it by that exact number (cards/service).
"""
import json
import re
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, func, select, text

from ..cards import codes
from ..cards.models import Card
from ..core.actor import Actor
from ..core.audit import AuditEntry
from ..core.money import format_fen
from ..core.phones import last4, mask_mobile, normalise_mobile
from ..core.rows import insert_rows
from ..core.timeutil import local_today, utcnow, zone
from ..extensions import db
from ..points import service as points
from ..points.models import PointsAccount, PointsEntry, PointsLot
from ..reports import imports
from ..reports.imports import RowError, _amount, _count, _error, _flag, _plain, _Problems
from ..stores import service as stores
from ..wallet.models import WalletAccount, WalletEntry
from . import levels
from .merge_models import MemberMerge
from .models import Member, MemberLevelChange, new_referral_code

REQUIRED = ("mobile", "name", "card_no", "store_code")
OPTIONAL = ("level", "birthday", "gender", "email", "sms_consent", "email_consent", "opening_points",
            "points_expire_on", "opening_principal", "opening_bonus")
MAX_POINTS = 100_000_000
REASON = "Legacy import"  # the opening entries' reason (stored text, like other ledger reasons)
_GENDERS = {"male": "male", "m": "male", "男": "male", "female": "female", "f": "female", "女": "female",
            "other": "other", "其他": "other"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FULL_DATE = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
_MONTH_DAY = re.compile(r"^([0-9]{1,2})-([0-9]{1,2})$")


def rows(raw, _kind="members"):
    return imports.rows_of(raw, REQUIRED, OPTIONAL)


def count_rows(raw, _kind="members") -> int:
    return imports.count_of(raw, REQUIRED, OPTIONAL)


class Lookups:
    """Stores and levels read once per file; the members and cards a chunk's rows name are
    read with one query each per chunk and dropped with the next chunk (memory stays flat).
    `job_id` and `actor` go on what the writing pass writes; `new` and `unchanged` count what
    the checking pass found (a dry run reports them)."""

    def __init__(self, job_id: int | None = None, actor: Actor | None = None):
        self.job_id, self.actor = job_id, actor or Actor.system("import")
        self.stores = {s.code: s.id for s in stores.list_stores()}
        every = list(levels.list_levels())
        self.levels = {**{lv.name.strip().lower(): lv.id for lv in every},
                       **{lv.code.strip().lower(): lv.id for lv in every}}  # a code wins over a name
        self.entry_level_id = levels.entry_level().id
        self.today, self.tz = local_today(), zone()
        self.mobiles, self.cards, self.new, self.unchanged = {}, {}, 0, 0
        self.merged_mobiles, self.took_mobile = {}, set()

    def prefetch(self, chunk):
        """Who holds the mobiles and card numbers of these rows now."""
        mobiles, cards = set(), set()
        for _line, fields in chunk:
            try:
                mobiles.add(normalise_mobile(fields.get("mobile", "")))
            except ValueError:
                pass
            if number := codes.legacy_card_no(fields.get("card_no", "")):
                cards.add(number)
        self.mobiles, self.cards, self.merged_mobiles = {}, {}, {}
        for part in imports.chunks(sorted(mobiles), 500):
            self.mobiles.update(db.session.execute(
                select(Member.mobile, Member.id).where(Member.mobile.in_(part))).all())
        # A card of a merged member is its survivor's (members/merge.py), wherever it stayed.
        for part in imports.chunks(sorted(cards), 500):
            self.cards.update(db.session.execute(
                select(Card.card_no, func.coalesce(Member.merged_into_id, Member.id))
                .join(Member, Member.id == Card.member_id).where(Card.card_no.in_(part))).all())
        # Those survivors' merges: the mobile a duplicate had before the merge freed it (kept in the
        # merge row), and whether the survivor took a duplicate's mobile in place of its own (not
        # kept: an erasure would have to find it). A row naming such a card with its mobile freed
        # is that member imported before, merged since.
        self.took_mobile = set()
        for part in imports.chunks(sorted(set(self.cards.values())), 500):
            for profile, chosen, survivor in db.session.execute(
                    select(MemberMerge.from_profile, MemberMerge.fields, Member.merged_into_id)
                    .join(Member, Member.id == MemberMerge.from_member_id).where(Member.merged_into_id.in_(part))):
                if (profile or {}).get("mobile") in mobiles:
                    self.merged_mobiles[profile["mobile"]] = survivor
                if (chosen or {}).get("mobile") == "from":
                    self.took_mobile.add(survivor)


def _mobile(value):
    try:
        return normalise_mobile(value)
    except ValueError as exc:
        raise RowError(f"mobile: {exc}") from None


def _card_no(value):
    if not value:
        raise RowError(_("%(column)s is empty.", column="card_no"))
    number = codes.legacy_card_no(value)
    if number is None:
        raise RowError(_("card_no must be %(min)d to %(max)d digits.", min=codes.LEGACY_MIN, max=codes.LEGACY_MAX))
    return number


def _name(value):
    if not value:
        raise RowError(_("%(column)s is empty.", column="name"))
    return _plain(value, "name", 100)


def _store(value, look):
    store_id = look.stores.get(value.upper())
    if store_id is None:
        raise RowError(_("Unknown store %(code)s.", code=value or "—"))
    return store_id


def _level(value, look):
    if not value:
        return look.entry_level_id
    level_id = look.levels.get(value.strip().lower())
    if level_id is None:
        raise RowError(_("Unknown level %(level)s.", level=value))
    return level_id


def _birthday(value, look):
    """(month, day, year or None) of "1988-02-29" or "02-29"; None if empty."""
    if not value:
        return None
    full, short = _FULL_DATE.match(value), _MONTH_DAY.match(value)
    year, month, day = (int(full[1]), int(full[2]), int(full[3])) if full else \
        (None, int(short[1]), int(short[2])) if short else (None, 0, 0)
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 02-29 without a year is a birthday
    except ValueError:
        raise RowError(_("birthday must be a date like 1988-05-01 or 05-01.")) from None
    if year is not None and not 1900 <= year <= look.today.year:
        raise RowError(_("birthday must be a date like 1988-05-01 or 05-01."))
    return month, day, year


def _gender(value):
    if not value:
        return None
    gender = _GENDERS.get(value.strip().lower())
    if gender is None:
        raise RowError(_("gender must be male, female or other."))
    return gender


def _email(value):
    if not value:
        return None
    if len(value) > 255 or not _EMAIL.match(value):
        raise RowError(_("email is not an email address."))
    return value


def _expiry(value, look):
    """The moment points valid through this date (the chain's time zone) expire; None if empty."""
    if not value:
        return None
    try:
        last = date.fromisoformat(value)
        after = last + timedelta(days=1)  # OverflowError for 9999-12-31: a bad line, not a failed job
    except (ValueError, OverflowError):
        raise RowError(_("%(column)s must be a date like 2026-05-01.", column="points_expire_on")) from None
    if last < look.today:
        raise RowError(_("points_expire_on is in the past."))
    return datetime.combine(after, datetime.min.time(), tzinfo=look.tz)


def _parse(line, fields, look, seen=None) -> dict:
    """A row's values, or RowError with every problem it has (its fields, then whether its
    mobile or card belongs to someone else, or came earlier in the file)."""
    row = _Problems()
    mobile = row.check(_mobile, fields["mobile"])
    card_no = row.check(_card_no, fields["card_no"])
    values = dict(
        name=row.check(_name, fields["name"]), store_id=row.check(_store, fields["store_code"], look),
        level_id=row.check(_level, fields.get("level", ""), look),
        birthday=row.check(_birthday, fields.get("birthday", ""), look),
        gender=row.check(_gender, fields.get("gender", "")), email=row.check(_email, fields.get("email", "")),
        sms=row.check(_flag, fields.get("sms_consent", ""), "sms_consent"),
        email_consent=row.check(_flag, fields.get("email_consent", ""), "email_consent"),
        points=row.check(lambda v: _count(v, "opening_points", 0, MAX_POINTS) if v else 0,
                         fields.get("opening_points", "")),
        expires_at=row.check(_expiry, fields.get("points_expire_on", ""), look),
        principal=row.check(lambda v: _amount(v, "opening_principal") if v else 0, fields.get("opening_principal", "")),
        bonus=row.check(lambda v: _amount(v, "opening_bonus") if v else 0, fields.get("opening_bonus", "")))
    state = None
    if mobile is not None and card_no is not None:
        by_mobile, by_card = look.mobiles.get(mobile), look.cards.get(card_no)
        if by_mobile is None and by_card is not None and (look.merged_mobiles.get(mobile) == by_card
                                                          or by_card in look.took_mobile):
            by_mobile = by_card  # merged since: its mobile freed, its card the survivor's
        if by_mobile is not None and by_mobile == by_card:
            state = "unchanged"  # imported before: nothing to do
        else:
            if by_mobile is not None:
                row.note(_("The mobile %(mobile)s belongs to member #%(id)d, whose card is not %(card)s.",
                           mobile=mobile, id=by_mobile, card=card_no))
            if by_card is not None:
                row.note(_("Card %(card)s belongs to member #%(id)d.", card=card_no, id=by_card))
            state = "new"
    if seen is not None:
        for key, column, value in (("m", "mobile", mobile), ("c", "card_no", card_no)):
            if value is None:
                continue
            if (key, value) in seen:
                row.note(_("%(column)s %(value)s is also on line %(line)d.", column=column, value=value,
                           line=seen[(key, value)]))
            else:
                seen[(key, value)] = line
    row.raise_any()
    return {**values, "mobile": mobile, "card_no": card_no, "state": state}


def check_chunk(_kind, chunk, look: Lookups, seen: dict) -> list[dict]:
    """The checking pass over some rows: the bad ones with all their problems; writes nothing.
    `seen` ({("m", mobile) | ("c", card): line}) finds a mobile or card given twice in the file."""
    look.prefetch(chunk)
    errors = []
    for line, fields in chunk:
        try:
            values = _parse(line, fields, look, seen)
        except RowError as exc:
            errors.append(_error(line, exc))
            continue
        if values["state"] == "unchanged":
            look.unchanged += 1
        else:
            look.new += 1
    return errors


def write_chunk(_kind, chunk, look: Lookups) -> tuple[int, int, list[dict]]:
    """The writing pass over some rows (the bad ones already left out): every new member with
    their card, opening balances and audit rows, in bulk. Returns (new, 0, errors); an error
    here is a row that became a conflict after the checking pass (another import took its
    mobile or card meanwhile). Rows imported before are neither written nor counted."""
    look.prefetch(chunk)
    new, errors = [], []
    for line, fields in chunk:
        try:
            values = _parse(line, fields, look)
        except RowError as exc:
            errors.append(_error(line, exc))
            continue
        if values["state"] == "new":
            new.append((line, values))
    if new:
        _insert(new, look)
    return len(new), 0, errors


_PG_ARRAYS = ((Boolean, "boolean[]"), (Integer, "integer[]"), (String, "text[]"), (DateTime, "timestamptz[]"),
              (JSON, "text[]"))


def _bulk(model, rows: list[dict], key: tuple[str, ...] = ()) -> list[int]:
    """Insert the rows; with `key` (columns unique among them), their new ids in the order given.
    PostgreSQL: one INSERT … SELECT FROM unnest(one array per column) RETURNING, as the checks
    import does (a multi-row VALUES of a chunk is tens of thousands of parameters, each parsed
    by the driver); the ids are matched back by the key, not by the order rows come back in.
    SQLite: an executemany (core/rows.py), and the ids read back by the key."""
    if not rows:
        return []
    if db.session.get_bind().dialect.name != "postgresql":
        insert_rows(model, rows, returning=False)
        return _ids_by_key(model, rows, key) if key else []
    table, columns = model.__table__, list(rows[0])
    arrays, picks, params = [], [], {}
    for i, name in enumerate(columns):
        kind = table.c[name].type
        kind = getattr(kind, "impl", kind)  # UTCDateTime: a DateTime
        array = next(a for t, a in _PG_ARRAYS if isinstance(kind, t))
        values = [r[name] for r in rows]
        if isinstance(kind, JSON):
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        arrays.append(f"CAST(:p{i} AS {array})")
        picks.append(f"CAST(u.c{i} AS json)" if isinstance(kind, JSON) else f"u.c{i}")
        params[f"p{i}"] = values
    quoted = ", ".join(f'"{c}"' for c in columns)
    returning = f" RETURNING id, {', '.join(key)}" if key else ""
    sql = (f"INSERT INTO {table.name} ({quoted}) SELECT {', '.join(picks)} FROM unnest({', '.join(arrays)}) "
           f"AS u({', '.join(f'c{i}' for i in range(len(columns)))}){returning}")
    result = db.session.execute(text(sql), params)
    if not key:
        return []
    ids = {tuple(row[1:]): row[0] for row in result}
    return [ids[tuple(r[k] for k in key)] for r in rows]


def _ids_by_key(model, rows, key) -> list[int]:
    """The ids of rows just inserted, read back by their key (SQLite: a RETURNING that must keep
    the rows' order is sent one row at a time; reading them back is one query per 500)."""
    first = getattr(model, key[0])
    ids = {}
    for part in imports.chunks(sorted({r[key[0]] for r in rows}), 500):
        ids.update({tuple(row[1:]): row[0] for row in db.session.execute(
            select(model.id, *(getattr(model, k) for k in key)).where(first.in_(part)))})
    return [ids[tuple(r[k] for k in key)] for r in rows]


def _referral_codes(n: int) -> list[str]:
    """n referral codes no member has (the unique index is the last word: a clash there rolls
    the chunk back, and import_jobs writes it again with fresh codes)."""
    wanted = set()
    while len(wanted) < n:
        fresh = {new_referral_code() for _i in range(n - len(wanted))} - wanted
        taken = set(db.session.scalars(select(Member.referral_code).where(Member.referral_code.in_(fresh))))
        wanted |= fresh - taken
    return list(wanted)


def _insert(new: list[tuple[int, dict]], look: Lookups):
    now, actor, staff_id = utcnow(), look.actor, look.actor.staff_id
    default_expiry = points.expiry_for(now)
    member_ids = _bulk(Member, [{
        "name": v["name"], "mobile": v["mobile"], "mobile_last4": last4(v["mobile"]),
        "birthday_month": v["birthday"][0] if v["birthday"] else None,
        "birthday_day": v["birthday"][1] if v["birthday"] else None,
        "birth_year": v["birthday"][2] if v["birthday"] else None,
        "gender": v["gender"], "email": v["email"], "segment": None, "level_id": v["level_id"],
        "company_id": None, "store_id": v["store_id"], "sales_rep": "",
        "sms_consent": bool(v["sms"]), "sms_consent_at": now if v["sms"] else None,
        "email_consent": bool(v["email_consent"]), "email_consent_at": now if v["email_consent"] else None,
        "service_consent": True, "service_consent_at": None, "referral_code": code, "referred_by_id": None,
        "notes": "", "created_by": staff_id, "created_at": now, "updated_at": now,
    } for (_line, v), code in zip(new, _referral_codes(len(new)), strict=True)], key=("mobile",))
    _bulk(Card, [{
        "card_no": v["card_no"], "member_id": m, "status": "active", "issued_store_id": v["store_id"],
        "issued_by": staff_id, "issued_at": now, "status_changed_at": now, "replaces_id": None,
        "legacy": not codes.is_our_card_no(v["card_no"]),
    } for (_line, v), m in zip(new, member_ids, strict=True)])
    _opening_points([(line, v, m) for (line, v), m in zip(new, member_ids, strict=True) if v["points"]],
                    now, staff_id, default_expiry, look.job_id)
    _opening_wallet([(line, v, m) for (line, v), m in zip(new, member_ids, strict=True)
                     if v["principal"] or v["bonus"]], now, staff_id, look.job_id)
    # A level above the entry one, as the old system gave it: recorded as a level change, which
    # also spares the member the yearly review until they have had a whole window here.
    _bulk(MemberLevelChange, [{
        "member_id": m, "from_level_id": look.entry_level_id, "to_level_id": v["level_id"], "reason": "import",
        "figures": {"import_job": look.job_id}, "review_year": None, "staff_id": staff_id, "created_at": now,
    } for (_line, v), m in zip(new, member_ids, strict=True) if v["level_id"] != look.entry_level_id])
    _bulk(AuditEntry, _audit_rows(new, member_ids, now, actor, look.job_id))


def _opening_points(rows, now, staff_id, default_expiry, job_id):
    if not rows:
        return
    accounts = _bulk(PointsAccount, [{"member_id": m, "balance": v["points"], "updated_at": now}
                                      for _line, v, m in rows], key=("member_id",))
    entries = _bulk(PointsEntry, [{
        "account_id": a, "kind": "opening", "points": v["points"], "checkout_id": None, "reverses_id": None,
        "store_id": v["store_id"], "staff_id": staff_id, "reason": REASON,
        "details": {"import_job": job_id, "line": line}, "created_at": now,
    } for (line, v, _m), a in zip(rows, accounts, strict=True)], key=("account_id",))  # one entry per new account
    _bulk(PointsLot, [{
        "account_id": a, "entry_id": e, "points": v["points"], "remaining": v["points"], "earned_at": now,
        "expires_at": v["expires_at"] or default_expiry,
    } for (_line, v, _m), a, e in zip(rows, accounts, entries, strict=True)])


def _opening_wallet(rows, now, staff_id, job_id):
    if not rows:
        return
    accounts = _bulk(WalletAccount, [{"member_id": m, "kind": kind, "balance": v[kind], "updated_at": now}
                                      for _line, v, m in rows for kind in ("principal", "bonus")],
                     key=("member_id", "kind"))
    entries = []
    for (_line, v, _m), principal, bonus in zip(rows, accounts[0::2], accounts[1::2], strict=True):
        entries += [{"account_id": a, "kind": "opening", "amount": v[kind], "topup_id": None, "checkout_id": None,
                     "reverses_id": None, "store_id": v["store_id"], "staff_id": staff_id, "reason": REASON,
                     "created_at": now} for kind, a in (("principal", principal), ("bonus", bonus)) if v[kind]]
    _bulk(WalletEntry, entries)


def _audit_rows(new, member_ids, now, actor, job_id):
    """Each member's import, and each consent the file gives (the consent's history, as
    registration writes it), as audit rows."""
    base = {"created_at": now, "staff_id": actor.staff_id, "username": actor.username, "role": actor.role,
            "entity_type": "members", "address": actor.address}
    out = []
    for (line, v), m in zip(new, member_ids, strict=True):
        out.append({**base, "action": "member.import", "entity_id": str(m), "store_id": v["store_id"], "details": {
            "import_job": job_id, "line": line, "mobile": mask_mobile(v["mobile"]), "card_no": v["card_no"],
            "points": v["points"], "principal": format_fen(v["principal"]), "bonus": format_fen(v["bonus"])}})
        for channel, granted in (("sms", v["sms"]), ("email", v["email_consent"])):
            if granted:
                out.append({**base, "action": "member.consent_granted", "entity_id": str(m),
                            "store_id": v["store_id"],
                            "details": {"channel": channel, "source": "import", "import_job": job_id}})
    return out
