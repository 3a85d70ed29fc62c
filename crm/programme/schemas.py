from marshmallow import Schema, fields

from ..core.fields import Bool, Int
from ..core.money import Money


class ProgrammeSchema(Schema):
    card_fee = Money()
    replacement_fee = Money()
    points_earn_unit = Money(metadata={"description": "Spend that earns points_per_unit points (default 10.00)."})
    points_per_unit = Int(metadata={"description": "Points per full points_earn_unit (default 1)."})
    point_value = Money(metadata={"description": "What one point is worth when redeemed (default 1.00)."})
    points_expiry_months = Int(metadata={"description": "Months after the month earned; 0 = never."})
    level_window_months = Int(metadata={"description": "Rolling window of spend for level upgrades."})
    wallet_spend_mode = fields.Str(metadata={"description": "proportional (default) or principal_first."})
    wallet_pin_threshold = Money(metadata={"description": "Wallet payments above this need the PIN."})
    points_on_wallet_bonus = Bool(metadata={"description": "Does the bonus part of a payment earn points?"})
    draw_min_spend = Money(metadata={"description": "A bill of at least this earns a lucky draw; 0.00 = none."})
    quiet_hours_start = fields.Str(metadata={"description": "Marketing messages wait from this time (HH:MM, "
                                                            "member's store zone; default 21:00)."})
    quiet_hours_end = fields.Str(metadata={"description": "... until this time (default 08:00); equal = no quiet "
                                                          "hours."})

    referral_reward = fields.Str(metadata={"description": "Referral reward 老带新: none (default), points or coupon."})
    referral_referrer_points = Int(metadata={"description": "Points for the referrer (reward kind points)."})
    referral_referee_points = Int(metadata={"description": "Points for the new member (reward kind points)."})
    referral_referrer_coupon = fields.Str(metadata={"description": "Coupon type code for the referrer (reward kind "
                                                                   "coupon); empty = none."})
    referral_referee_coupon = fields.Str(metadata={"description": "Coupon type code for the new member (reward "
                                                                  "kind coupon); empty = none."})
    referral_min_spend = Money(metadata={"description": "The new member's first bill of at least this (after "
                                                        "coupons) qualifies; 0.00 = any bill."})
    referral_yearly_cap = Int(metadata={"description": "Rewards per referrer per calendar year (the bill's store "
                                                       "time zone); 0 = no cap. Default 10."})


class ProgrammeUpdateSchema(ProgrammeSchema):
    """PATCH body: any subset of the rules."""
