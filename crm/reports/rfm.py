"""RFM segmentation of members: recency, frequency and monetary value over the last 12
months of bills (checkouts and imported checks), each scored 1–5 by quintile: 1 + the
share of members with a strictly lower figure × 5 (PERCENT_RANK, so members with equal
figures always score alike; 5 = most recent / most often / most spent).

Named groups, first match wins:
  champions  R ≥ 4, F ≥ 4, M ≥ 4     loyal     F ≥ 4
  new        R ≥ 4, F ≤ 2            at_risk   R ≤ 2, F ≥ 3
  lost       R ≤ 2, F ≤ 2            others    everyone else with a bill
Members without a bill in the window are in no group. A group is usable as a campaign
audience filter (`rfm`)."""
from datetime import datetime, timedelta

from flask_babel import lazy_pgettext
from sqlalchemy import Integer, and_, case, cast, func, select

from ..core.timeutil import utcnow
from ..extensions import db
from ..members import service as members
from .kpis import facts
from .sql import least

GROUPS = {"champions": lazy_pgettext("rfm", "Champions"), "loyal": lazy_pgettext("rfm", "Loyal"),
          "new": lazy_pgettext("rfm", "New"), "at_risk": lazy_pgettext("rfm", "At risk"),
          "lost": lazy_pgettext("rfm", "Lost"), "others": lazy_pgettext("rfm", "Needs attention")}


def scored(now: datetime | None = None):
    """A subquery: member_id, recency (last bill), frequency, monetary, r, f, m, and group."""
    now = now or utcnow()
    b = facts()
    per_member = (select(b.c.member_id, func.max(b.c.at).label("last_bill"), func.count().label("frequency"),
                         func.sum(b.c.amount).label("monetary"))
                  .where(b.c.member_id.is_not(None), b.c.at >= now - timedelta(days=365), b.c.at <= now)
                  .group_by(b.c.member_id).subquery())
    def score(column):  # 1-5 by the share of members strictly below; equal figures score alike
        return least(1 + cast(func.percent_rank().over(order_by=column) * 5, Integer), 5)  # cast truncates: >= 0
    scores = select(per_member, score(per_member.c.last_bill).label("r"), score(per_member.c.frequency).label("f"),
                    score(per_member.c.monetary).label("m")).subquery()
    group = case((and_(scores.c.r >= 4, scores.c.f >= 4, scores.c.m >= 4), "champions"),
                 (scores.c.f >= 4, "loyal"), (and_(scores.c.r >= 4, scores.c.f <= 2), "new"),
                 (and_(scores.c.r <= 2, scores.c.f >= 3), "at_risk"), (and_(scores.c.r <= 2, scores.c.f <= 2), "lost"),
                 else_="others")
    return select(scores, group.label("rfm_group")).subquery("rfm")


def group_counts(now: datetime | None = None) -> dict:
    s = scored(now)
    counts = dict(db.session.execute(select(s.c.rfm_group, func.count()).group_by(s.c.rfm_group)).all())
    return {key: counts.get(key, 0) for key in GROUPS}


def members_in(groups, now: datetime | None = None):
    """Ids of members in these groups, as a subquery (the audience filter)."""
    s = scored(now)
    return select(s.c.member_id).where(s.c.rfm_group.in_(list(groups)))


def top(group: str, limit: int = 50, now: datetime | None = None):
    s = scored(now)
    M = members.Member
    return db.session.execute(select(M.id, M.name, s.c.last_bill, s.c.frequency, s.c.monetary, s.c.r, s.c.f, s.c.m)
                              .join(M, M.id == s.c.member_id).where(s.c.rfm_group == group)
                              .order_by(s.c.monetary.desc()).limit(limit)).all()
