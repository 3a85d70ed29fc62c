"""Words the till and the receipt show for the keys bills carry (tenders; item categories come from the catalogue);
lazy, so each page shows them in its own language."""
from flask_babel import lazy_gettext as _l

from ..catalog.labels import CATEGORY_NAMES  # noqa: F401 - the till's and receipt's words for them

# The means a cashier picks for the part of the bill not paid from stored value.
PAY_METHOD_NAMES = {"cash": _l("Cash"), "bank_card": _l("Bank card"), "wechat_pay": _l("WeChat Pay"),
                    "alipay": _l("Alipay")}
TENDER_NAMES = {**PAY_METHOD_NAMES, "stored_value": _l("Stored value"), "other": _l("Other (not stated)"),
                "company_account": _l("Charged to company account")}
COMPANY_METHOD_NAME = _l("Charge to company account")  # the till's choice, shown to signers only
