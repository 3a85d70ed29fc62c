"""What the member page's history calls each kind and event (staff language)."""
from flask_babel import lazy_gettext as _l

KINDS = {"bill": _l("Bills"), "points": _l("Points"), "wallet": _l("Stored value"), "coupon": _l("Coupons"),
         "card": _l("Card")}

EVENTS = {
    ("bill", "closed"): _l("Bill"),
    ("bill", "voided"): _l("Bill voided"),
    ("points", "earn"): _l("Points earned"),
    ("points", "redeem"): _l("Points redeemed"),
    ("points", "expire"): _l("Points expired"),
    ("points", "adjust"): _l("Points adjusted by a manager"),
    ("points", "reversal"): _l("Points reversed (bill voided)"),
    ("points", "stay"): _l("Points earned by a hotel stay"),
    ("points", "stay_undo"): _l("Points taken back (stay corrected or cancelled)"),
    ("wallet", "topup"): _l("Top-up"),
    ("wallet", "spend"): _l("Paid from stored value"),
    ("wallet", "refund"): _l("Stored value refunded"),
    ("wallet", "reversal"): _l("Stored value reversed (bill voided)"),
    ("coupon", "issued"): _l("Coupon received"),
    ("coupon", "redeemed"): _l("Coupon used"),
    ("card", "issue"): _l("Card issued"),
    ("card", "freeze"): _l("Card frozen"),
    ("card", "unfreeze"): _l("Card unfrozen"),
    ("card", "lost"): _l("Card reported lost"),
    ("card", "replace"): _l("Card replaced"),
    ("card", "cancel"): _l("Card cancelled"),
}

WALLET_PARTS = {"principal": _l("principal"), "bonus": _l("bonus")}

COUPON_SOURCES = {"topup": _l("top-up gift"), "campaign": _l("campaign"), "draw": _l("lucky draw"),
                  "birthday": _l("birthday"), "manual": _l("given by staff")}


def event_label(kind: str, event: str) -> str:
    return str(EVENTS.get((kind, event), event))
