"""The five staff roles and the groups routes are opened to.

Admin may use every route (it runs the system); every other role only what its
group names. A route that names no roles is closed to everyone (see access.py).
"""
from flask_babel import lazy_gettext as _l

ADMIN, MANAGER, FRONT_DESK, CASHIER, MARKETING = "admin", "manager", "front_desk", "cashier", "marketing"
ROLES = (ADMIN, MANAGER, FRONT_DESK, CASHIER, MARKETING)
ROLE_NAMES = {ADMIN: _l("Administrator"), MANAGER: _l("Manager"), FRONT_DESK: _l("Front desk"),
              CASHIER: _l("Cashier"), MARKETING: _l("Marketing")}

# Who may see a member's full mobile number; the others see 138****8000.
FULL_MOBILE_ROLES = frozenset({ADMIN, MANAGER, FRONT_DESK})

# Common groups, so routes read as intent.
ANY_STAFF = frozenset(ROLES)
MEMBER_DESK = frozenset({FRONT_DESK, MANAGER})              # registers and edits members, cards
MEMBER_LOOKUP = frozenset({FRONT_DESK, CASHIER, MANAGER, MARKETING})  # finds and views members
COUNTER = frozenset({CASHIER, FRONT_DESK, MANAGER})         # scans cards at the till
MANAGERS = frozenset({MANAGER})
MARKETERS = frozenset({MARKETING, MANAGER})               # audiences, templates, campaigns
ADMINS = frozenset({ADMIN})
