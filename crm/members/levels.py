"""Member levels (tiers): the entry level every new member starts on, and their rules."""
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from ..core import audit
from ..core.actor import Actor
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .models import MemberLevel

ENTRY_LEVEL = {"code": "standard", "name": "普通会员", "rank": 0, "points_multiplier": Decimal("1.00")}


def entry_level() -> MemberLevel:
    """The rank-0 level new members start on; created with the demo programme's defaults
    the first time it is needed (even if an admin added higher tiers first)."""
    level = db.session.scalar(select(MemberLevel).where(MemberLevel.rank == 0))
    if level is None:
        level = MemberLevel(**ENTRY_LEVEL)
        db.session.add(level)
        db.session.flush()
    return level


def list_levels():
    entry_level()
    return db.session.scalars(select(MemberLevel).order_by(MemberLevel.rank)).all()


def get_by_code(code: str, *, as_404=False) -> MemberLevel:
    level = db.session.scalar(select(MemberLevel).where(MemberLevel.code == code))
    if level is None:
        if as_404:
            raise NotFound(_("No such level."))
        raise Invalid(_("Unknown level %(code)s.", code=code), code="unknown_level", field="level_code")
    return level


def _check(rank, multiplier, ignore_id=None):
    if multiplier is not None and multiplier <= 0:
        raise Invalid(_("The points multiplier must be above zero."), code="invalid_multiplier",
                      field="points_multiplier")
    if rank is not None:
        clash = db.session.scalar(select(MemberLevel.id).where(MemberLevel.rank == rank))
        if clash and clash != ignore_id:
            raise Conflict(_("Another level has that rank."), code="rank_taken", field="rank")


def create_level(actor: Actor, *, code, name, rank, points_multiplier=Decimal("1.00"),
                 upgrade_spend=None, upgrade_topup=None) -> MemberLevel:
    """Add a tier; rank orders tiers (0 is where members start)."""
    if db.session.scalar(select(MemberLevel.id).where(MemberLevel.code == code)):
        raise Conflict(_("A level with that code exists."), code="level_code_taken", field="code")
    _check(rank, points_multiplier)
    level = MemberLevel(code=code, name=name, rank=rank, points_multiplier=points_multiplier,
                        upgrade_spend=upgrade_spend, upgrade_topup=upgrade_topup)
    db.session.add(level)
    db.session.flush()
    audit.record(actor, "level.create", entity=level, code=code)
    return level


def update_level(actor: Actor, code: str, **changes) -> MemberLevel:
    level = get_by_code(code, as_404=True)
    _check(changes.get("rank"), changes.get("points_multiplier"), ignore_id=level.id)
    for field, value in changes.items():
        setattr(level, field, value)
    audit.record(actor, "level.update", entity=level, fields=sorted(changes))
    return level


def levels_above(member) -> list[MemberLevel]:
    """Higher levels a member could still reach, highest first."""
    return db.session.scalars(select(MemberLevel).where(MemberLevel.rank > member.level.rank)
                              .order_by(MemberLevel.rank.desc())).all()


def upgrade_for(actor: Actor, member, *, spend=0, topup=0, candidates=None) -> MemberLevel | None:
    """Move a member up to the highest level whose spend or top-up threshold they reach.
    Levels only go up here; a downgrade happens only at the yearly review. `spend` and
    `topup` may be callables, evaluated only if some level has that kind of threshold."""
    candidates = levels_above(member) if candidates is None else candidates
    if any(level.upgrade_spend is not None for level in candidates) and callable(spend):
        spend = spend()
    if any(level.upgrade_topup is not None for level in candidates) and callable(topup):
        topup = topup()
    for level in candidates:
        if ((level.upgrade_spend is not None and spend >= level.upgrade_spend)
                or (level.upgrade_topup is not None and topup >= level.upgrade_topup)):
            previous = member.level.code
            member.level = level
            audit.record(actor, "member.level_up", entity=member, previous=previous, level=level.code,
                         spend=spend, topup=topup)
            return level
    return None
