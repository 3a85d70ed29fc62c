"""Guest segments 客源细分 (docs/rules.md "Reports"). Keys are the API's; names are shown to people."""
from flask_babel import lazy_gettext as _l

SEGMENTS = {
    "walk_in": _l("Walk-in"),
    "business_fit": _l("Business FIT"),
    "online_fit": _l("Online FIT"),
    "conference": _l("Conference & exhibition"),
    "government": _l("Government"),
    "ta_group": _l("Travel-agency group"),
    "ta_fit": _l("Travel-agency FIT"),
    "long_stay": _l("Long stay"),
    "house_use": _l("House use"),
    "complimentary": _l("Complimentary"),
    "other": _l("Other"),
}
SEGMENT_KEYS = tuple(SEGMENTS)
