"""What the business owes its guests, as the liability page shows it and its downloads write it:
stored value (principal, refundable; bonus, forfeited on refund), points outstanding and
what they are worth when redeemed, and the face value of coupons still usable."""
from ..core.timeutil import local_today
from ..coupons import service as coupons
from ..points import service as points
from ..programme import service as programme
from ..wallet import service as wallet
from .figures import money


def liability_figures() -> dict:
    owed = wallet.liability()
    outstanding = points.outstanding()
    return {"wallet_principal": money(owed["principal"]), "wallet_bonus": money(owed["bonus"]),
            "points_outstanding": outstanding, "points_value": money(outstanding * programme.get("point_value")),
            "coupons_face_value": money(coupons.unused_face_value(local_today()))}
