"""CSV imports of checks (POS) and stays (PMS): every row validated, every bad row reported
with its line number; a file with errors imports nothing unless the caller skips bad rows.
Re-importing a check_no / stay_no of the same store updates the row, never duplicates it.

A file is read in two passes, a chunk of rows at a time: the first checks every row and
writes nothing (so "nothing imported" holds for a file with errors), the second writes the
good rows in bulk: one query finds which numbers of the chunk already exist, then one
executemany inserts the new ones and one updates the others. `run` does both at once, in
the caller's transaction; import_jobs.py runs them in the background, committing each chunk.

A file is UTF-8 (with or without BOM) or GB18030, which includes GBK, the encoding Chinese
Excel saves "CSV" in: each is tried strictly in that order (`decode`), and the one that
read the file is reported. A bad row is reported once with every problem it has.
"""
import csv
import io
import itertools
import re
from collections import namedtuple
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import Boolean, Date, DateTime, Integer, String, select, text
from sqlalchemy.dialects import sqlite

from ..core import audit
from ..core.actor import Actor
from ..core.money import parse_amount
from ..core.phones import normalise_mobile
from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow, zone
from ..errors import Invalid
from ..extensions import db
from ..members import companies
from ..members.merge_models import MemberMerge
from ..members.models import Member
from ..stores import service as stores
from .models import Check, Stay

CHECK_COLUMNS = ("check_no", "store_code", "closed_at", "amount", "covers", "segment")
CHECK_OPTIONAL = ("member_mobile", "joined_at_visit")
STAY_COLUMNS = ("stay_no", "store_code", "arrival", "departure", "rooms", "room_revenue", "segment")
# fb_revenue: F&B posted to the room; cancelled: 1 for a stay the PMS cancelled after sending it
# (its points are taken back: crm/stays/service.py).
STAY_OPTIONAL = ("member_mobile", "company", "sales_rep", "complimentary", "day_use", "fb_revenue", "cancelled")
_WHOLE = re.compile(r"^[0-9]{1,9}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE, _FALSE = {"1", "true", "yes", "y", "是", "t"}, {"", "0", "false", "no", "n", "否", "f"}


ENCODINGS = ("utf-8", "gb18030")  # tried in this order; GB18030 is a superset of GBK and GB2312


class RowError(ValueError):
    """A row's problems: one message per problem."""

    def __init__(self, *problems: str):
        super().__init__(*problems)
        self.problems = list(problems)

    def __str__(self):
        return " ".join(p if p.endswith((".", "。")) else p + "." for p in self.problems)


def decode(raw: bytes | str) -> tuple[str, str]:
    """(text, encoding name) of a file: UTF-8 (a BOM is dropped), else GB18030/GBK; 422 if neither
    reads the whole file without an error."""
    if not isinstance(raw, bytes):
        return raw.lstrip("\ufeff"), "utf-8"
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # the UTF-8 mark; a converter may put it on GBK text too
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1  # where the last encoding tried (GB18030) stopped
    raise Invalid(_("Line %(line)d of the file is neither UTF-8 nor GBK/GB18030 text (it may be damaged). "
                    "In Excel, save it as “CSV UTF-8”.", line=line), code="invalid_encoding", field="file", line=line)


def _text(raw: bytes | str) -> str:
    return decode(raw)[0]


def _header(fieldnames, required, optional) -> list[str]:
    """The header's column names; 422 if it lacks a column or has one we do not know."""
    header = [h.strip().lower() for h in (fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise Invalid(_("The header row lacks: %(columns)s.", columns=", ".join(missing)), code="missing_columns",
                      field="file", missing=missing)
    duplicate = sorted({c for c in header if c and header.count(c) > 1})
    if duplicate:  # which of two `mobile` columns is the member's would be a guess
        raise Invalid(_("Columns given twice: %(columns)s.", columns=", ".join(duplicate)), code="duplicate_columns",
                      field="file", duplicate=duplicate)
    unknown = [c for c in header if c and c not in required + optional]
    if unknown:
        raise Invalid(_("Unknown columns: %(columns)s.", columns=", ".join(unknown)), code="unknown_columns",
                      field="file", unknown=unknown)
    return header


def _reader(raw):
    """CSV rows; a malformed file (a field over the csv module's 128 KB limit, a NUL byte) is 422."""
    reader = csv.reader(io.StringIO(_text(raw), newline=""))

    def checked():
        try:
            yield from reader
        except csv.Error as exc:
            raise Invalid(_("Line %(line)d is not valid CSV.", line=reader.line_num), code="invalid_csv",
                          field="file", line=reader.line_num, reason=str(exc)) from None
    return checked(), reader


def rows(raw, kind):
    """(line number, {column: value}) for each data row of a file of this kind. The encoding
    and the header are checked at once (422), not when the first row is read."""
    _model, _number, required, optional, _parse = KINDS[kind]
    return rows_of(raw, required, optional)


def rows_of(raw, required, optional):
    """`rows` of a file with these columns (member imports have their own: members/legacy_import.py)."""
    lines, reader = _reader(raw)
    return _data_rows(lines, reader, _header(next(lines, None), required, optional))


def _data_rows(lines, reader, header):
    width, named = len(header), [(i, name) for i, name in enumerate(header) if name]
    for row in lines:
        cells = row[:width]  # cells past the header are ignored, missing ones are empty
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        cells += [""] * (width - len(cells))
        yield reader.line_num, {name: cells[i].strip() for i, name in named}


def count_rows(raw, kind) -> int:
    """Check the encoding and the header (422) and count the data rows, as `rows` yields them."""
    _model, _number, required, optional, _parse = KINDS[kind]
    return count_of(raw, required, optional)


def count_of(raw, required, optional) -> int:
    """`count_rows` of a file with these columns."""
    lines, _reader_state = _reader(raw)
    width = len(_header(next(lines, None), required, optional))
    return sum(1 for row in lines if any(cell.strip() for cell in row[:width]))


def chunks(iterable, size: int):
    """Lists of at most `size` items."""
    it = iter(iterable)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _amount(value, column):
    try:
        fen = parse_amount(value)
    except ValueError as exc:
        raise RowError(f"{column}: {exc}") from None
    if fen < 0:
        raise RowError(_("%(column)s cannot be negative.", column=column))
    return fen


def _count(value, column, minimum, maximum=100_000):
    if not _WHOLE.match(value) or not minimum <= int(value) <= maximum:
        raise RowError(_("%(column)s must be a whole number from %(min)d to %(max)d.", column=column, min=minimum,
                         max=maximum))
    return int(value)


def _flag(value, column):
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise RowError(_("%(column)s must be 1 or 0 (yes or no).", column=column))


def _date(value, column):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(_("%(column)s must be a date like 2026-05-01.", column=column)) from None


def _plain(value, column, max_length):
    """Text the database can keep: no control characters (a NUL cannot be stored), not too long."""
    if _CONTROL.search(value):
        raise RowError(_("%(column)s contains a control character.", column=column))
    if len(value) > max_length:
        raise RowError(_("%(column)s is longer than %(max)d characters.", column=column, max=max_length))
    return value


def _number(fields, column):
    if not fields[column]:
        raise RowError(_("%(column)s is empty.", column=column))
    return _plain(fields[column], column, 64)


def _segment(value):
    if value not in SEGMENT_KEYS:
        raise RowError(_("Unknown segment %(value)s.", value=value or "—"))
    return value


_Store = namedtuple("_Store", "id code kind timezone")


class Lookups:
    """Stores, members by mobile and companies by name, each read once per file; the members of
    a chunk are found with one query (`prefetch`) rather than one per row."""

    def __init__(self, actor: Actor | None = None):
        self.actor = actor  # who the stays' points entries name (crm/stays): the uploader
        # Plain copies: ORM objects would be reloaded after every chunk's commit.
        self.stores = {s.code: _Store(s.id, s.code, s.kind, s.timezone) for s in stores.list_stores()}
        self.mobiles, self.normalised, self.companies = {}, {}, None

    def store(self, code):
        store = self.stores.get(code.upper())
        if store is None:
            raise RowError(_("Unknown store %(code)s.", code=code or "—"))
        return store

    def _normalise(self, raw):
        """The stored form of a mobile, or the ValueError saying why it is not one (cached)."""
        if raw not in self.normalised:
            try:
                self.normalised[raw] = normalise_mobile(raw)
            except ValueError as exc:
                self.normalised[raw] = exc
        return self.normalised[raw]

    def prefetch(self, chunk):
        """Find the members of every mobile in these rows not looked up yet."""
        wanted = {m for m in (self._normalise(f["member_mobile"]) for _line, f in chunk if f.get("member_mobile"))
                  if isinstance(m, str) and m not in self.mobiles}
        for part in chunks(sorted(wanted), 500):
            self.mobiles.update(dict.fromkeys(part))
            self.mobiles.update({m: i for i, m in db.session.execute(
                select(Member.id, Member.mobile).where(Member.mobile.in_(part)))})
            # A mobile a merge freed (members/merge.py keeps it in the merge row) is the guest's
            # still: the survivor's, as the duplicate's card is (the latest merge if it was reused).
            if missing := [m for m in part if self.mobiles[m] is None]:
                old = MemberMerge.from_profile["mobile"].as_string()
                self.mobiles.update({m: i for m, i in db.session.execute(
                    select(old, Member.merged_into_id).join(Member, Member.id == MemberMerge.from_member_id)
                    .where(old.in_(missing), Member.merged_into_id.is_not(None)).order_by(MemberMerge.id))})

    def member(self, mobile):
        if not mobile:
            return None
        found = self._normalise(mobile)
        if isinstance(found, ValueError):
            raise RowError(f"member_mobile: {found}")
        if found not in self.mobiles:
            self.prefetch([(0, {"member_mobile": mobile})])
        if self.mobiles[found] is None:
            raise RowError(_("No member has the mobile %(mobile)s.", mobile=found))
        return self.mobiles[found]

    def company(self, name):
        if self.companies is None:
            self.companies = companies.ids_by_name()
        return self.companies.get(name)


class _Problems:
    """Checks a row's fields one by one, keeping every problem rather than stopping at the first."""

    def __init__(self):
        self.found = []

    def check(self, parse, *args):
        """parse(*args), or None (and the problem noted) if it raises RowError."""
        try:
            return parse(*args)
        except RowError as exc:
            self.found += exc.problems
            return None

    def note(self, problem: str):
        self.found.append(problem)

    def raise_any(self):
        if self.found:
            raise RowError(*self.found)


def _closed_at(value, store):
    try:
        closed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(_("closed_at must be a time like 2026-05-01T19:30:00+08:00.")) from None
    if closed.tzinfo is None:  # the till's own clock: the store's time zone
        closed = closed.replace(tzinfo=zone(store.timezone if store else None))
    return closed


def _check(fields, look):
    row = _Problems()
    store = row.check(look.store, fields["store_code"])
    no = row.check(_number, fields, "check_no")
    values = dict(
        closed_at=row.check(_closed_at, fields["closed_at"], store),
        amount=row.check(_amount, fields["amount"], "amount"),
        covers=row.check(_count, fields["covers"], "covers", 0), segment=row.check(_segment, fields["segment"]),
        member_id=row.check(look.member, fields.get("member_mobile", "")),
        joined_at_visit=row.check(_flag, fields.get("joined_at_visit", ""), "joined_at_visit"))
    row.raise_any()
    return store.id, no, values


def _stay(fields, look):
    row = _Problems()
    store = row.check(look.store, fields["store_code"])
    if store is not None and store.kind != "hotel":
        row.note(_("%(code)s is not a hotel.", code=store.code))
    no = row.check(_number, fields, "stay_no")
    arrival = row.check(_date, fields["arrival"], "arrival")
    departure = row.check(_date, fields["departure"], "departure")
    if arrival and departure and departure < arrival:
        row.note(_("departure is before arrival."))
    day_use = row.check(_flag, fields.get("day_use", ""), "day_use")
    if day_use and arrival and departure and departure != arrival:
        row.note(_("A day-use stay arrives and departs on the same day."))
    segment = row.check(_segment, fields["segment"])
    company = row.check(_plain, fields.get("company", ""), "company", 200)
    sales_rep = row.check(_plain, fields.get("sales_rep", ""), "sales_rep", 10_000)
    rooms = row.check(_count, fields["rooms"], "rooms", 1)
    revenue = row.check(_amount, fields["room_revenue"], "room_revenue")
    member_id = row.check(look.member, fields.get("member_mobile", ""))
    complimentary = row.check(_flag, fields.get("complimentary", ""), "complimentary")
    fb_revenue = row.check(_amount, fields.get("fb_revenue") or "0", "fb_revenue")
    cancelled = row.check(_flag, fields.get("cancelled", ""), "cancelled")
    from ..stays.service import revenue_problem
    if problem := revenue_problem(revenue, fb_revenue):
        row.note(f"fb_revenue: {problem}")
    row.raise_any()
    return store.id, no, dict(
        arrival=arrival, departure=departure, rooms=rooms, room_revenue=revenue, segment=segment,
        fb_revenue=fb_revenue, cancelled=cancelled,
        member_id=member_id, company_name=company, company_id=look.company(company) if company else None,
        sales_rep=sales_rep[:64],  # cut to fit, as before
        complimentary=complimentary or segment == "complimentary", day_use=day_use or departure == arrival)


KINDS = {"checks": (Check, "check_no", CHECK_COLUMNS, CHECK_OPTIONAL, _check),
         "stays": (Stay, "stay_no", STAY_COLUMNS, STAY_OPTIONAL, _stay)}


def _error(line: int, exc: RowError) -> dict:
    """A bad row as jobs keep it: its line, all its problems, and them as one message."""
    return {"line": line, "message": str(exc), "problems": exc.problems}


def check_chunk(kind: str, chunk, look: Lookups, seen: dict) -> list[dict]:
    """The first pass over some rows: [{line, message}] of the bad ones, writing nothing.
    `seen` collects the (store, number) of the good rows, so a number that comes again
    later in the file is reported there."""
    _model, number, _required, _optional, parse = KINDS[kind]
    look.prefetch(chunk)
    errors = []
    for line, fields in chunk:
        try:
            store_id, no, _values = parse(fields, look)
        except RowError as exc:
            errors.append(_error(line, exc))
            continue
        if (store_id, no) in seen:
            errors.append(_error(line, RowError(_("%(column)s %(no)s appears twice in the file.", column=number,
                                                  no=no))))
            continue
        seen[(store_id, no)] = line
    return errors


def write_chunk(kind: str, chunk, look: Lookups) -> tuple[int, int, list[dict]]:
    """The second pass over some rows (the bad ones already left out): insert the new numbers and
    update the known ones in place, with one INSERT … ON CONFLICT DO UPDATE.
    Returns (imported, updated, errors); an error here means a row stopped being valid after
    the first pass (its member was removed meanwhile)."""
    model, number, _required, _optional, parse = KINDS[kind]
    look.prefetch(chunk)
    good, errors = {}, []
    for line, fields in chunk:
        try:
            store_id, no, values = parse(fields, look)
        except RowError as exc:
            errors.append(_error(line, exc))
            continue
        good[(store_id, no)] = values
    if not good:
        return 0, 0, errors
    now, table = utcnow(), model.__table__
    if kind == "stays":  # in key order: two files of the same stays in other orders queue instead of deadlocking
        good = dict(sorted(good.items()))
    params = [{"store_id": s, number: no, **values, "imported_at": now} for (s, no), values in good.items()]
    if db.session.get_bind().dialect.name == "postgresql":
        new = _upsert_postgresql(table, number, params)
    else:
        new = len(params) - len(_existing_ids(model, number, good))
        stmt = sqlite.insert(table)
        db.session.execute(stmt.on_conflict_do_update(
            index_elements=["store_id", number],
            set_={c: stmt.excluded[c] for c in params[0] if c not in ("store_id", number)}), params)
    if kind == "stays":  # what each stay of a member earns, under the members' locks (crm/stays)
        from ..stays import service as stays
        stays.settle_keys(look.actor or Actor.system("import"), good)
    return new, len(params) - new, errors


_PG_ARRAY = {Integer: "integer[]", String: "text[]", Boolean: "boolean[]", Date: "date[]", DateTime: "timestamptz[]"}


def _upsert_postgresql(table, number: str, params: list[dict]) -> int:
    """INSERT … SELECT FROM unnest(one array per column) ON CONFLICT DO UPDATE: the whole chunk as
    a dozen parameters (a multi-row VALUES would be thousands, each parsed by the driver). Returns
    how many rows were new: xmax is 0 on a row the statement inserted."""
    columns = list(params[0])
    casts = []
    for name in columns:
        kind = table.c[name].type
        kind = getattr(kind, "impl", kind)  # UTCDateTime: a DateTime
        casts.append(f"CAST(:{name} AS {next(v for k, v in _PG_ARRAY.items() if isinstance(kind, k))})")
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("store_id", number))
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(casts)}) "
           f"ON CONFLICT (store_id, {number}) DO UPDATE SET {updates} RETURNING (xmax = 0)")
    inserted = db.session.execute(text(sql), {c: [p[c] for p in params] for c in columns}).scalars()
    return sum(1 for new in inserted if new)


def _existing_ids(model, number, keys) -> dict:
    """{(store id, number): row id} of the keys already imported: one query per store (and per
    1,000 numbers), on the (store_id, number) unique index."""
    column, by_store, found = getattr(model, number), {}, {}
    for store_id, no in keys:
        by_store.setdefault(store_id, []).append(no)
    for store_id, numbers in by_store.items():
        for part in chunks(numbers, 1000):
            found.update({(store_id, no): row_id for row_id, no in db.session.execute(
                select(model.id, column).where(model.store_id == store_id, column.in_(part)))})
    return found


def run(actor: Actor, kind: str, raw, *, skip_bad_rows: bool = False, chunk_rows: int = 2000) -> dict:
    """Import a CSV of checks or stays in the caller's transaction (the demo loads its stays this
    way; uploads go through import_jobs): {imported, updated, skipped, errors: [{line, message}]}."""
    look, seen, errors = Lookups(actor), {}, []
    for chunk in chunks(rows(raw, kind), chunk_rows):
        errors += check_chunk(kind, chunk, look, seen)
    result = {"imported": 0, "updated": 0, "skipped": len(errors), "errors": errors, "encoding": decode(raw)[1]}
    if errors and not skip_bad_rows:
        result["skipped"] = len(errors) + len(seen)
        return result
    bad = {e["line"] for e in errors}
    for chunk in chunks((row for row in rows(raw, kind) if row[0] not in bad), chunk_rows):
        imported, updated, late = write_chunk(kind, chunk, look)
        result["imported"] += imported
        result["updated"] += updated
        result["skipped"] += len(late)
        errors += late
    audit.record(actor, f"import.{kind}", entity_type=kind, imported=result["imported"], updated=result["updated"],
                 skipped=result["skipped"])
    return result
