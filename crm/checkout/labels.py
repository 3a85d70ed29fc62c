"""Words the till and the receipt show for the keys bills carry (item categories, tenders);
lazy, so each page shows them in its own language."""
from flask_babel import lazy_gettext as _l

# The demo menu's categories; a category not listed here shows as its key.
CATEGORY_NAMES = {
    "sashimi": _l("Sashimi"), "seafood": _l("Seafood"), "hot": _l("Hot dishes"), "staple": _l("Staples"),
    "vegetable": _l("Vegetables"), "drinks": _l("Drinks"), "room": _l("Rooms"), "breakfast": _l("Breakfast"),
}
# The means a cashier picks for the part of the bill not paid from stored value.
PAY_METHOD_NAMES = {"cash": _l("Cash"), "bank_card": _l("Bank card"), "wechat_pay": _l("WeChat Pay"),
                    "alipay": _l("Alipay")}
TENDER_NAMES = {**PAY_METHOD_NAMES, "stored_value": _l("Stored value"), "other": _l("Other (not stated)")}
