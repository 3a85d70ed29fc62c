"""Demo chain for `flask crm demo`: realistic enough that every page shows something."""
import random
from decimal import Decimal

from sqlalchemy import select

from .auth import service as staff_service
from .cards import service as cards
from .core.actor import Actor
from .extensions import db
from .members import companies, levels
from .members import service as members
from .programme import service as programme
from .stores import service as stores
from .stores.models import Store

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


def load_demo(member_count: int = 300, seed: int = 20261123) -> bool:
    """Create the demo chain once; returns False if it is already there."""
    if db.session.scalar(select(Store.id).where(Store.code == "BJ01")):
        return False
    rng = random.Random(seed)
    system = Actor.system("demo")
    chain = [
        stores.create_store(system, code="BJ01", name="海鲜坊·朝阳店", kind="restaurant", address="北京市朝阳区"),
        stores.create_store(system, code="BJ02", name="海鲜坊·海淀店", kind="restaurant", address="北京市海淀区"),
        stores.create_store(system, code="HT01", name="海鲜坊酒店·王府井", kind="hotel", rooms=280,
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
        if rng.random() < 0.9:
            card = cards.issue(system, member.id, store_code=store.code, fee_paid=fee,
                               payment_method=rng.choice(("cash", "wechat", "alipay")))
            roll = rng.random()
            if roll < 0.03:
                cards.change_state(system, card.card_no, "freeze", "会员要求")
            elif roll < 0.06:
                cards.replace(system, card.card_no, store_code=store.code, fee_paid=programme.get("replacement_fee"),
                              payment_method="cash", reason="卡片遗失")
    db.session.commit()
    return True


def _mobile(rng, used):
    while True:
        mobile = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
        if mobile not in used:
            used.add(mobile)
            return mobile
