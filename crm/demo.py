"""Demo chain for `flask crm demo`: realistic enough that every page shows something."""
import bisect
import calendar
import math
import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from .auth import service as staff_service
from .cards import service as cards
from .catalog import service as catalog
from .checkout import service as checkout
from .core.actor import Actor
from .core.timeutil import local_today, utcnow
from .coupons import service as coupons
from .errors import DomainError
from .extensions import db
from .members import companies, levels
from .members import service as members
from .members.models import Member
from .points import service as points
from .programme import service as programme
from .stores import service as stores
from .stores.models import Store
from .wallet import service as wallet

DEMO_PASSWORD = "demo1234"
DEMO_STAFF = [  # username, role, name, home store
    ("admin", "admin", "系统管理员", None),
    ("manager", "manager", "王经理", "BJ01"),
    ("frontdesk", "front_desk", "李前台", "BJ01"),
    ("hoteldesk", "front_desk", "陈前台", "HT01"),
    ("cashier", "cashier", "赵收银", "BJ01"),
    ("marketing", "marketing", "刘市场", None),
]
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬"
_TAGS = ["VIP", "海鲜", "素食", "商务宴请", "家庭聚餐", "生日宴", "会议"]
_COMPANIES = [("北京中联科技有限公司", "key_account", 1500), ("华夏会展服务有限公司", "conference", 1000),
              ("京城律师事务所", "potential", 0)]


# sku, name, category, list, member price (yuan); about twenty member dishes (docs/rules.md)
_MENU = [
    ("SALMON", "三文鱼刺身", "sashimi", 108, 68), ("TUNA", "金枪鱼刺身", "sashimi", 128, 88),
    ("URCHIN", "海胆刺身", "sashimi", 88, 68), ("SURFCLAM", "北极贝刺身", "sashimi", 68, 48),
    ("OYSTER", "法国生蚝(只)", "seafood", 18, 12), ("OYSTER12", "法国生蚝一打(12只)", "seafood", 216, 180),
    ("LOBSTER", "波士顿龙虾", "seafood", 388, 328),
    ("KINGCRAB", "帝王蟹", "seafood", 688, 588), ("GROUPER", "清蒸石斑", "seafood", 268, 218),
    ("MANTIS", "椒盐皮皮虾", "seafood", 128, 98), ("SCALLOP", "蒜蓉扇贝(只)", "seafood", 16, 12),
    ("ABALONE", "红烧鲍鱼(只)", "seafood", 58, 45), ("SEACUC", "葱烧海参", "seafood", 168, 138),
    ("CRABTOFU", "蟹黄豆腐", "hot", 48, 38), ("LOBNOODLE", "龙虾汤面", "staple", 68, 55),
    ("PORRIDGE", "海鲜粥", "staple", 38, 28), ("FRIEDRICE", "海鲜炒饭", "staple", 28, 22),
    ("KAILAN", "白灼芥兰", "vegetable", 32, 26), ("JUICE", "鲜榨果汁", "drinks", 28, 22),
    ("BEER", "青岛啤酒", "drinks", 15, 12), ("TEA", "铁观音(壶)", "drinks", 20, None),
    ("RICE", "米饭", "staple", 3, None),
]
_HOTEL_MENU = [("ROOM-STD", "标准间(晚)", "room", 688, 588), ("ROOM-DLX", "豪华间(晚)", "room", 988, 858),
               ("BREAKFAST", "自助早餐", "breakfast", 98, 78)]


def load_demo(member_count: int = 300, seed: int = 20261123, history_days: int = 365) -> bool:
    """Create the demo chain once; returns False if it is already there."""
    if db.session.scalar(select(Store.id).where(Store.code == "BJ01")):
        return False
    rng = random.Random(seed)
    system = Actor.system("demo")
    chain = [
        stores.create_store(system, code="BJ01", name="海鲜坊·朝阳店", kind="restaurant", address="北京市朝阳区"),
        stores.create_store(system, code="BJ02", name="海鲜坊·海淀店", kind="restaurant", address="北京市海淀区"),
        stores.create_store(system, code="HT01", name="海鲜坊酒店·王府井", kind="hotel", rooms=HOTEL_ROOMS,
                            address="北京市东城区王府井"),
    ]
    by_code = {s.code: s for s in chain}
    levels.entry_level()
    levels.create_level(system, code="silver", name="银卡会员", rank=1, points_multiplier=Decimal("1.20"),
                        upgrade_spend=500_000, upgrade_topup=500_000)
    levels.create_level(system, code="gold", name="金卡会员", rank=2, points_multiplier=Decimal("1.50"),
                        upgrade_spend=2_000_000, upgrade_topup=1_000_000)
    for username, role, name, store in DEMO_STAFF:
        staff_service.create_staff(system, username=username, password=DEMO_PASSWORD, role=role, name=name,
                                   store_id=by_code[store].id if store else None)
    for name, cls, discount in _COMPANIES:
        companies.create(system, name=name, account_class=cls, discount_bp=discount, sales_rep="孙销售",
                         contact_person="联系人")
    for sku, name, category, list_price, member_price in _MENU + _HOTEL_MENU:
        catalog.create_item(system, {
            "sku": sku, "name": name, "category": category, "list_price": list_price * 100,
            "member_price": member_price * 100 if member_price else None,
            "store_codes": ["HT01"] if category in ("room", "breakfast") else ["BJ01", "BJ02"]})
    year = local_today().year  # the chain's calendar year, not UTC's (they differ on New Year's Eve evening)
    catalog.create_promotion(system, {"code": f"VAL{year + 1}", "name": "情人节7.7折", "rate_bp": 7700,
                                      "categories": ["sashimi", "seafood"], "starts_on": date(year + 1, 2, 14),
                                      "ends_on": date(year + 1, 2, 14), "members_only": False})
    catalog.create_promotion(system, {"code": "BEER88", "name": "啤酒会员88折", "rate_bp": 8800,
                                      "categories": ["drinks"], "starts_on": date(year, 1, 1),
                                      "ends_on": date(year + 1, 12, 31), "members_only": True, "auto_apply": False})
    wallet.ensure_default_tiers()
    # pays for a dozen oysters (member price 180.00), not for one 12.00 oyster
    oyster = coupons.create_definition(system, {"code": "OYSTER180", "name": "180元生蚝券", "kind": "item",
                                                "face_value": 18000, "sku": "OYSTER12", "valid_days": 90})
    coupons.create_definition(system, {"code": "CASH50", "name": "满300减50", "kind": "cash", "face_value": 5000,
                                       "min_spend": 30000, "valid_days": 60})
    egg = coupons.create_definition(system, {"code": "REDEGG", "name": "母亲节红鸡蛋", "kind": "gift",
                                             "valid_days": 7})
    off = coupons.create_definition(system, {"code": "OFF88", "name": "88折券", "kind": "percent", "rate_bp": 8800,
                                             "valid_days": 30, "stock_total": 500})
    beer = coupons.create_definition(system, {"code": "BEER", "name": "啤酒一瓶", "kind": "item", "face_value": 1500,
                                              "sku": "BEER", "valid_days": 30})
    coupons.create_gift_rule(system, {"name": "九月充2000送生蚝", "min_topup": 200_000, "coupon_type": oyster.code,
                                      "starts_on": date(year, 9, 1), "ends_on": date(year, 9, 30), "stock": 2000})
    for name, definition, weight, stock in (("88折券", off, 10, 200), ("啤酒一瓶", beer, 30, 1000),
                                            ("红鸡蛋", egg, 60, 5000)):
        coupons.create_prize(system, {"name": name, "coupon_type": definition.code, "weight": weight, "stock": stock})
    all_levels = levels.list_levels()
    fee = programme.get("card_fee")
    used = set()
    for i in range(member_count):
        mobile = _mobile(rng, used)
        store = rng.choice(chain)
        data = {
            "name": rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2)))),
            "mobile": mobile, "store_code": store.code,
            "birthday": (rng.randint(1, 12), rng.randint(1, 28), rng.choice((None, rng.randint(1960, 2003)))),
            "gender": rng.choice(("male", "female")),
            "segment": rng.choice(("business_fit", "online_fit", "conference", "walk_in")
                                  if store.kind == "hotel" else ("walk_in", "walk_in", "business_fit")),
            "tags": rng.sample(_TAGS, rng.choice((0, 1, 2))),
            "marketing_consent": {"sms": rng.random() < 0.7, "email": rng.random() < 0.4},
            "company": rng.choice(_COMPANIES)[0] if rng.random() < 0.1 else None,
        }
        if i == 0:
            data["birthday"] = (2, 29, 1988)
        member = members.register(system, data)
        member.level = rng.choices(all_levels, weights=(80, 15, 5))[0]
        # joined over the last year and a bit, so growth and the monthly charts have a history
        member.created_at = utcnow() - timedelta(days=rng.randint(0, history_days + 60), minutes=rng.randint(0, 600))
        if rng.random() < 0.9:
            card = cards.issue(system, member.id, store_code=store.code, fee_paid=fee,
                               payment_method=rng.choice(("cash", "wechat", "alipay")))
            roll = rng.random()
            if roll < 0.03:
                cards.change_state(system, card.card_no, "freeze", "会员要求")
            elif roll < 0.06:
                cards.replace(system, card.card_no, store_code=store.code, fee_paid=programme.get("replacement_fee"),
                              payment_method="cash", reason="卡片遗失")
    db.session.flush()
    _history(rng, system, by_code, history_days)
    points.expire_all(system)
    _campaigns(system, egg)
    _hotel_history(rng, system, history_days)
    _front_desk(rng, system)
    _company_accounts(system)
    db.session.commit()
    return True


_PREFERENCES = ("高楼层", "无烟房", "荞麦枕", "大床", "安静房间", "海鲜过敏", "不要香菜", "加床")
_ROOM_TYPES = ("标准间", "豪华间", "行政套房")


def _front_desk(rng, actor):
    """Today's and tomorrow's arrivals at the hotel, two thirds of them members, some with
    preferences, so the front desk's list has something to recognise."""
    from .frontdesk import service as frontdesk
    from .frontdesk.schemas import ReservationInSchema
    today = local_today()
    guests = db.session.execute(select(Member).where(Member.anonymised_at.is_(None)).order_by(Member.id)
                                .limit(30)).scalars().all()
    for member in guests[:10]:
        member.preferences = rng.sample(_PREFERENCES, rng.choice((1, 2, 3)))
    for i in range(16):
        member = guests[i] if i % 3 != 2 and i < len(guests) else None
        arrival = today + timedelta(days=i % 2)
        body = {"reservation_no": f"RSV{arrival:%m%d}{i:03d}", "store_code": "HT01", "arrival": arrival.isoformat(),
                "departure": (arrival + timedelta(days=rng.choice((1, 2, 3)))).isoformat(),
                "rooms": 1, "room_type": rng.choice(_ROOM_TYPES), "notes": rng.choice(("", "", "晚到 22:00", "接机"))}
        if member is not None:
            body["member_id"] = member.id
        else:
            body["guest_name"] = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        frontdesk.save(actor, ReservationInSchema().load(body))


def _company_accounts(actor):
    """The two key companies sign for bills: each gets an account with a credit limit and its
    members as signers, and one has paid something already."""
    from .corporate import service as corporate
    for name, limit in (("北京中联科技有限公司", 5_000_000), ("华夏会展服务有限公司", 2_000_000)):
        company = companies.find_by_name(name)
        corporate.save_account(actor, company.id, credit_limit=limit)
        signers = db.session.scalars(select(Member.id).where(Member.company_id == company.id)
                                     .order_by(Member.id).limit(3)).all()
        for n, member_id in enumerate(signers):
            corporate.add_signer(actor, company.id, member_id)
            for days_ago in (75 - 20 * n, 40 - 10 * n, 3 + n):  # signed dinners, so statements and ageing show
                body = {"store_code": "BJ01", "member_id": member_id, "covers": 6, "segment": "business_fit",
                        "items": [{"sku": "LOBSTER", "qty": 1}, {"sku": "SALMON", "qty": 2}],
                        "tenders": [{"method": "company_account"}]}
                try:
                    with db.session.begin_nested():
                        checkout.close(actor, body, at=utcnow() - timedelta(days=days_ago, hours=2))
                except DomainError:
                    pass  # a frozen card or a lapsed level: that dinner was paid otherwise
        if signers:
            corporate.record_payment(actor, company.id, amount=min(corporate.get_account(company.id).owed, 100_000),
                                     method="bank_transfer", reference="转账", received_on=local_today())


_HOTEL_SEGMENTS = (("business_fit", 30, 520), ("online_fit", 25, 430), ("conference", 15, 480),
                   ("walk_in", 14, 600), ("government", 5, 450), ("ta_group", 4, 350), ("long_stay", 3, 300),
                   ("complimentary", 2, 0), ("house_use", 2, 0))  # key, weight, rate in yuan


HOTEL_ROOMS = 280
# room nights one stay brings on average: nights (1, 1, 2, 2, 3, 5) × rooms (1.25; a group 4-10)
_NIGHTS_PER_STAY = 2.33 * (0.96 * 1.25 + 0.04 * 7)


def _occupancy_target(day: date, rng) -> float:
    """How full the demo hotel is on a day: about 70 %, fuller on Friday and Saturday nights and
    in the autumn, emptier in late winter."""
    season = 0.07 * math.sin((day.timetuple().tm_yday - 150) / 365 * 2 * math.pi)
    weekend = 0.08 if day.weekday() in (4, 5) else -0.02
    return min(0.97, max(0.3, 0.68 + season + weekend + rng.uniform(-0.06, 0.06)))


def _months(first: date, last: date):
    """(year, month) from first's month to last's, in order."""
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield y, m
        y, m = (y, m + 1) if m < 12 else (y + 1, 1)


def _hotel_history(rng, actor, days):
    """Stays at the hotel since 1 January last year (or the last `days` days, if fewer than a
    year is asked for), imported the way a PMS export would be (through the importer, so the
    demo exercises its validation): enough arrivals each day for a realistic occupancy, so
    this year and last year both have figures for every month. Two competitors with figures
    for every month of that time, and this year's plan: every report page has something."""
    from .reports import competitors, imports, segments
    today = local_today()  # the hotel's calendar, not UTC's
    first = date(today.year - 1, 1, 1) if days >= 365 else today - timedelta(days=days)
    # A member now and then among the hotel's guests (1.5 % of stays, any member): their stays earn
    # points and count toward the level. In id order, so the seed gives the same guests on either database.
    mobiles = [m for (m,) in db.session.execute(select(Member.mobile).order_by(Member.id))]
    lines = ["stay_no,store_code,arrival,departure,rooms,room_revenue,segment,member_mobile,company,sales_rep,"
             "day_use"]
    keys, weights = [k for k, _w, _r in _HOTEL_SEGMENTS], [w for _k, w, _r in _HOTEL_SEGMENTS]
    rates = {k: r for k, _w, r in _HOTEL_SEGMENTS}
    arrival, i = first, 0
    while arrival < today:
        for _n in range(round(HOTEL_ROOMS * _occupancy_target(arrival, rng) / _NIGHTS_PER_STAY)):
            segment = rng.choices(keys, weights)[0]
            day_use = segment == "walk_in" and rng.random() < 0.1
            nights = 0 if day_use else rng.choice((1, 1, 2, 2, 3, 5))
            rooms = rng.choice((1, 1, 1, 2)) if segment != "ta_group" else rng.randint(4, 10)
            rate = rates[segment] * rng.uniform(0.85, 1.15)
            revenue = round(rate * max(nights, 0.5) * rooms, 2)
            company = rng.choice(_COMPANIES)[0] if segment in ("business_fit", "conference") and rng.random() < 0.6 \
                else ""
            mobile = rng.choice(mobiles) if mobiles and rng.random() < 0.015 else ""
            lines.append(f"H{i:06d},HT01,{arrival},{arrival + timedelta(days=nights)},{rooms},{revenue:.2f},"
                         f"{segment},{mobile},{company},{rng.choice(('孙销售', '周销售', ''))},{1 if day_use else 0}")
            i += 1
        arrival += timedelta(days=1)
    result = imports.run(actor, "stays", "\n".join(lines) + "\n")
    assert not result["errors"], result["errors"][:3]
    for name, rooms, occupancy, rate in (("国贸大酒店", 320, 0.78, 560), ("东方君悦", 260, 0.71, 610)):
        rival = competitors.add_competitor(actor, "HT01", name, rooms)
        for year, month in _months(first, today):
            available = rooms * calendar.monthrange(year, month)[1]
            sold = min(int(available * occupancy * rng.uniform(0.9, 1.1)), available)
            competitors.set_month(actor, rival.id, year, month, available_rooms=available, rooms_sold=sold,
                                  room_revenue=int(sold * rate * 100))
    plan_nights = HOTEL_ROOMS * 365 * 0.7 / 100  # a year at 70 %, split by the segments' weights
    segments.save_plans(actor, "HT01", today.year, None, {
        key: (int(plan_nights * weight), rates[key] * 100) for key, weight, _r in _HOTEL_SEGMENTS})


def _campaigns(actor, egg):
    """The birthday greeting (with a cake coupon) and Mother's Day (red eggs) scheduled; a
    National Day greeting already sent, so the outbox has something to show."""
    from .campaigns import audiences, jobs, messages
    from .campaigns import service as campaigns
    cake = coupons.create_definition(actor, {"code": "BDAYCAKE", "name": "生日蛋糕券", "kind": "gift",
                                             "valid_days": 31})
    birthday = campaigns.birthday_campaign()
    campaigns.save(actor, {"channel": "outbox", "coupon_type_code": cake.code}, birthday.id)
    campaigns.transition(actor, birthday, "schedule")
    sms = audiences.save(actor, {"name": "同意短信的会员", "filters": {"consent": "sms"}})
    audiences.save(actor, {"name": "五月寿星", "filters": {"birthday_month": 5, "consent": "any"}})
    mothers = messages.save(actor, {"name": "母亲节", "subject": "母亲节快乐",
                                    "body": "{{ name }}{{ title }}，母亲节快乐！{% if coupon %}凭券号 "
                                            "{{ coupon.code }} 到{{ store }}领取{{ coupon.name }}一份。{% endif %}"})
    mothers_day = campaigns.save(actor, {"name": "母亲节送红鸡蛋", "audience_id": sms.id, "template_id": mothers.id,
                                         "channel": "outbox", "coupon_type_code": egg.code, "schedule": "holiday",
                                         "holiday_key": "mothers_day", "days_before": 1})
    campaigns.transition(actor, mothers_day, "schedule")
    greeting = messages.save(actor, {"name": "节日问候", "body": "{{ name }}{{ title }}，{{ store }}祝您节日快乐！"
                                                                "您现有 {{ points }} 积分。"})
    past = campaigns.save(actor, {"name": "国庆节问候", "audience_id": sms.id, "template_id": greeting.id,
                                  "channel": "outbox", "schedule": "once",
                                  "send_at": utcnow() - timedelta(days=1)})
    campaigns.transition(actor, past, "schedule")
    db.session.commit()
    jobs.run_campaigns(utcnow())


JOIN_AT_VISIT = 0.4  # share of members who signed up at the table, at their first bill


def _history(rng, actor, by_code, days):
    """A year of bills, most by members, some redeeming points, a few voided; and, among
    them, the first bill of members who joined at that visit (the walk-in card-issue rate
    then has figures for every month)."""
    joined = db.session.execute(select(Member.created_at, Member.id, Member.store_id).order_by(Member.created_at)).all()
    member_ids = [member_id for _at, member_id, _store in joined]
    joined_at = [at for at, _id, _store in joined]
    store_of = {store.id: store for store in by_code.values()}
    now = utcnow()
    restaurant_skus = [m[0] for m in _MENU]
    joiners = sorted((at + timedelta(minutes=rng.randint(5, 90)), member_id, store_id)
                     for at, member_id, store_id in joined
                     if at >= now - timedelta(days=days) and rng.random() < JOIN_AT_VISIT)
    for n in range(days // 4):  # a top-up every few days, September's earning the oyster gift
        at = now - timedelta(days=days * (1 - n / (days // 4 or 1)), minutes=rng.randint(0, 600))
        with db.session.begin_nested():
            wallet.top_up(actor, rng.choice(member_ids), store=by_code[rng.choice(("BJ01", "BJ02"))],
                          amount=rng.choice((100_000, 200_000, 500_000, 1_000_000)), payment_method="wechat", at=at)

    def items_for(store):
        if store.kind == "hotel":
            return [{"sku": rng.choice(("ROOM-STD", "ROOM-DLX")), "qty": rng.randint(1, 3)},
                    {"sku": "BREAKFAST", "qty": rng.randint(1, 2)}]
        return [{"sku": sku, "qty": rng.randint(1, 3)} for sku in rng.sample(restaurant_skus, rng.randint(2, 6))]

    def close(body, at, joined_here=False):
        try:
            with db.session.begin_nested():
                bill = checkout.close(actor, body, at=at)
                if joined_here:
                    bill.joined_at_visit = True  # close() judges "today" by the clock; this bill is in the past
                if rng.random() < 0.01:
                    checkout.void(actor, bill.id, "演示：录错账单")
        except DomainError:
            pass  # e.g. points would exceed a small bill: skip, as a cashier would re-ring it

    for n in range(days * 2):
        at = now - timedelta(days=days * (1 - n / (days * 2)), minutes=rng.randint(0, 600))
        while joiners and joiners[0][0] <= at:  # the guests who joined at the table meanwhile
            joined_time, member_id, store_id = joiners.pop(0)
            card = cards.live_card(member_id)
            if card is not None and card.status == "active":
                store = store_of[store_id]
                close({"store_code": store.code, "items": items_for(store), "covers": rng.randint(1, 6),
                       "member_id": member_id, "segment": "walk_in"}, joined_time, joined_here=True)
        hotel = rng.random() < 0.15
        store = by_code["HT01"] if hotel else by_code[rng.choice(("BJ01", "BJ02"))]
        body = {"store_code": store.code, "items": items_for(store), "covers": rng.randint(1, 8),
                "segment": rng.choice(("business_fit", "online_fit", "conference")) if hotel else "walk_in"}
        members_then = member_ids[:bisect.bisect_right(joined_at, at)]  # only members who had joined by then
        if members_then and rng.random() < 0.75:
            body["member_id"] = rng.choice(members_then)
            card = cards.live_card(body["member_id"])
            if card is not None and card.status != "active":
                continue
            balance = points.available(body["member_id"], at)
            if balance >= 20 and rng.random() < 0.3:
                body["redeem_points"] = min(balance, rng.randint(10, 60))
            elif wallet.balances(body["member_id"])["balance"] >= 20_000 and rng.random() < 0.5:
                body["wallet_amount"] = 10_000  # part of the bill from stored value, under the PIN threshold
        close(body, at)


def _mobile(rng, used):
    while True:
        mobile = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
        if mobile not in used:
            used.add(mobile)
            return mobile
