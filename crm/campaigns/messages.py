"""Message templates: Jinja in a sandbox, with the member's fields and nothing else.

Variables: name, title (先生/女士 or empty), level, points, wallet (e.g. "1250.00"),
store, and coupon (name, code, valid_until) when the campaign issues one, else None —
so `{% if coupon %}` guards work. A template is rendered against a sample member when
it is saved and again when a campaign is saved with it, so a typo or an unknown name is
refused there, not discovered at send time.
"""
import calendar
from functools import lru_cache

from flask_babel import gettext as _
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select

from ..core import audit
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.phones import mobile_for_viewer
from ..core.timeutil import local_today
from ..errors import Conflict, Invalid
from ..extensions import db
from .models import Campaign, MessageTemplate

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
TITLES = {"male": "先生", "female": "女士"}
VARIABLES = ("name", "title", "level", "points", "wallet", "store", "coupon")
SAMPLE = {"name": "王芳", "title": "女士", "level": "金卡会员", "points": 1280, "wallet": "1250.00",
          "store": "朝阳店"}
SAMPLE_COUPON = {"name": "生日蛋糕券", "code": "Q7K2M9P4X8TA"}


@lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENV.from_string(source)


def render(source: str, context: dict) -> str:
    return _compiled(source).render(context)


def sample_coupon(name: str | None = None) -> dict:
    """A coupon as a template shows it, valid to the end of this month."""
    today = local_today()
    until = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    return {**SAMPLE_COUPON, "valid_until": until.isoformat(), **({"name": name} if name else {})}


def sample_context(with_coupon: bool) -> dict:
    return {**SAMPLE, "coupon": sample_coupon() if with_coupon else None}


def check(subject: str, body: str, *, with_coupon: bool = True, field_prefix: str = ""):
    """Render both parts against a sample member; 422 `template_invalid` naming the part and line."""
    for field, source in (("subject", subject), ("body", body)):
        try:
            render(source or "", sample_context(with_coupon))
        except Exception as exc:  # noqa: BLE001 — a template is user code: any error it raises is theirs
            line = getattr(exc, "lineno", None)
            where = _(" (line %(line)d)", line=line) if line else ""
            message = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
            raise Invalid(_("The template cannot be used%(where)s: %(error)s", where=where, error=message),
                          code="template_invalid", field=field_prefix + field) from None


def list_templates():
    return db.session.scalars(select(MessageTemplate).order_by(MessageTemplate.name)).all()


def get_template(template_id: int) -> MessageTemplate:
    return get_or_404(MessageTemplate, template_id, _("No such template."), code="template_not_found")


def save(actor: Actor, data: dict, template_id: int | None = None) -> MessageTemplate:
    """Create (no id) or change a template, refusing one that does not render."""
    template = get_template(template_id) if template_id else MessageTemplate()
    name = (data.get("name", template.name) or "").strip()
    if not name:
        raise Invalid(_("Give the template a name."), code="name_required", field="name")
    clash = db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == name))
    if clash and clash != template_id:
        raise Conflict(_("Another template has this name."), code="name_taken", field="name")
    subject = data.get("subject", template.subject) or ""
    body = data.get("body", template.body) or ""
    if not body.strip():
        raise Invalid(_("Write the message."), code="body_required", field="body")
    check(subject, body)
    if template_id and db.session.scalar(select(Campaign.id).where(Campaign.template_id == template_id).limit(1)):
        check(subject, body, with_coupon=False)  # campaigns send it without a coupon too (none, or stock out)
    template.name, template.subject, template.body = name, subject.strip(), body
    db.session.add(template)
    db.session.flush()
    audit.record(actor, "template.save", entity=template, name=name)
    return template


def address_for_viewer(delivery) -> str:
    """Where a message went, as this viewer may see it: a mobile masked unless their role calls guests."""
    if delivery.channel == "email" or "@" in (delivery.address or ""):
        return delivery.address
    return mobile_for_viewer(delivery.address) or ""
