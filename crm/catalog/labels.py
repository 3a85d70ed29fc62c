"""Words for the item category keys the demo menu uses, shown by the catalogue, the till and
the receipt; lazy, so each page shows them in its own language. A category not listed here
(one a chain made up) shows as it was typed."""
from flask_babel import lazy_gettext as _l

CATEGORY_NAMES = {
    "sashimi": _l("Sashimi"), "seafood": _l("Seafood"), "hot": _l("Hot dishes"), "staple": _l("Staples"),
    "vegetable": _l("Vegetables"), "drinks": _l("Drinks"), "room": _l("Rooms"), "breakfast": _l("Breakfast"),
}


def category_name(key: str) -> str:
    return str(CATEGORY_NAMES.get(key, key))
