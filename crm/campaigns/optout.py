"""Marketing SMS must tell the member how to stop them (the carriers and 《通信短信息服务管理规定》
require it): a template sent by SMS ends with an opt-out hint such as 回TD退订. The replies
themselves arrive at POST /api/v1/sms/inbound (crm/members/consent.py)."""
import re
import unicodedata

from flask_babel import gettext as _

from ..errors import Invalid

EXAMPLE = "回TD退订"
# …回TD退订 / 回复T退订。 / 退订回T / Reply STOP to opt out — at the very end of the text.
_HINT = re.compile(r"(?:(?:回复?|reply)\s*(?:TD|T|STOP|退[订訂])\s*(?:退[订訂]|to\s+(?:opt\s+out|unsubscribe|stop))?"
                   r"|退[订訂]\s*回复?\s*(?:TD|T))\s*[。.!)]?\s*(?:【[^】]{1,20}】)?\s*$", re.IGNORECASE)


def has_hint(body: str) -> bool:
    """Full-width letters (a Chinese keyboard's ＴＤ) count as themselves; a trailing 【signature】 is allowed."""
    return bool(_HINT.search(unicodedata.normalize("NFKC", body or "")))


def check_sms_body(body: str, *, field: str = "body"):
    """Raise a 422 naming `field` unless the text ends with an opt-out hint."""
    if not has_hint(body):
        raise Invalid(_('A marketing SMS must end with how to opt out, for example "%(example)s".', example=EXAMPLE),
                      code="sms_opt_out_missing", field=field)
