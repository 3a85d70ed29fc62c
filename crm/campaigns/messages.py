"""Message templates: Jinja in a sandbox, with the member's fields and nothing else.

Variables: name, title (先生/女士 or empty), level, points, wallet (e.g. "1250.00"),
store, and coupon (name, code, valid_until) when the campaign issues one, else None —
so `{% if coupon %}` guards work. A template is rendered against a sample member when
it is saved and again when a campaign is saved with it, so a typo or an unknown name is
refused there, not discovered at send time.

Bounded by construction, because a template is user code run once per member: a greeting
needs the fields, filters and if/else, so that is the whole language. Loops, macros,
calls, `**`, `{% set %}` and the filters that pad or multiply text are refused when the
template is compiled (422 `template_too_costly`), which happens on save, on preview and at
send time alike, so a template written straight into the database is refused there too.
What is left runs in time and space proportional to the template's length (itself at most
MAX_SOURCE). Two backstops remain at run time rather than trusting that argument alone:
text repetition (`"x" * n`) is capped before the string is built, and the output is
counted as it streams (MAX_OUTPUT, `template_too_long`) against a wall-clock budget. A
budget in seconds can only be checked between output chunks, so it cannot be the main
defence: nothing Python-level can interrupt one `'x' * 10**9`; refusing it up front can.
"""
import logging
import re
import time
from datetime import timedelta
from functools import lru_cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select

from ..core import audit
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.phones import mobile_for_viewer
from ..core.timeutil import local_today
from ..errors import Conflict, Invalid
from ..extensions import db
from . import optout
from .models import Campaign, MessageTemplate

log = logging.getLogger("crm.campaigns")
MAX_SOURCE = 10_000  # characters of subject or body as written
MAX_OUTPUT = 20_000  # characters of one rendered part
MAX_REPEAT = 1_000  # characters a `"x" * n` may produce
MAX_DEPTH = 40  # nesting of the template's syntax tree (a greeting needs a handful)
RENDER_SECONDS = 1.0  # a CPU budget, not business time: time.monotonic(), not the injectable clock

# Filters that give back at most a small multiple of what they are given. Left out on purpose:
# center/indent/wordwrap/format (pad to any width), replace (multiplies when chained), round
# (a huge negative precision computes 10**n), and the list ones (nothing here is a list).
SAFE_FILTERS = ("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "last",
                "length", "lower", "string", "title", "trim", "truncate", "upper", "wordcount")
_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.CondExpr, nodes.Const, nodes.Name,
          nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test, nodes.Keyword, nodes.Compare,
          nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Concat, nodes.Add, nodes.Sub,
          nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod)
# No list, tuple or dict literals: nothing in a greeting needs one, and ((("a",)*1000,)*1000,)
# multiplies past any per-operation cap into work that runs in C where no budget can stop it.


class Refused(TemplateError):
    """Why a template cannot be used: `code` is template_invalid, template_too_costly or template_too_long."""

    def __init__(self, code: str, message, lineno: int | None = None):
        super().__init__(message)
        self.code, self.lineno = code, lineno


def _costly(message, lineno=None) -> Refused:
    return Refused("template_too_costly", message, lineno)


def _too_long(message=None) -> Refused:
    return Refused("template_too_long", message or _l("The message would be longer than %(max)d characters.",
                                                      max=MAX_OUTPUT))


class _MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (no internals, no mutation) with text repetition and `%` formatting checked
    before they run. Intercepting an operator also stops Jinja folding it at compile time."""
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options):
        super().__init__(**options)
        self.globals.clear()  # range, lipsum, dict, cycler...: no use in a message, and costly
        self.filters = {name: self.filters[name] for name in SAFE_FILTERS}

    def getattr(self, obj, attribute):
        return self._no_method(super().getattr(obj, attribute))

    def getitem(self, obj, argument):
        return self._no_method(super().getitem(obj, argument))

    @staticmethod
    def _no_method(value):
        """`{{ name.format }}` would print a method's repr (with a memory address)."""
        if callable(value) and not isinstance(value, Undefined):
            raise _costly(_l("A message cannot use %(what)s.", what=_l("function or method calls")))
        return value

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            raise _costly(_l("A message cannot use %(what)s.", what="**"))
        if operator == "%" and isinstance(left, str):  # "%09999999d" pads to any width
            raise _costly(_l("A message cannot use %(what)s.", what="text % value"))
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
                    raise _too_long(_l("Repeated text is at most %(max)d characters.", max=MAX_REPEAT))
        return super().call_binop(context, operator, left, right)


_ENV = _MessageEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
TITLES = {"male": "先生", "female": "女士"}
VARIABLES = ("name", "title", "level", "points", "wallet", "store", "coupon")
SAMPLE = {"name": "王芳", "title": "女士", "level": "金卡会员", "points": 1280, "wallet": "1250.00",
          "store": "朝阳店"}
SAMPLE_COUPON = {"name": "示例优惠券", "code": "Q7K2M9P4X8TA"}  # a campaign shows its own type's name


def _refused(node: nodes.Node):
    """What a node does that a message may not, in words; None if it is allowed."""
    if isinstance(node, (nodes.Filter, nodes.Test)):
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return "*args, **kwargs"
        if isinstance(node, nodes.Filter) and node.name not in SAFE_FILTERS and node.name in FILTERS:
            return _l("the %(name)s filter", name=node.name)  # unknown names: Jinja says "no filter named"
        return None
    if isinstance(node, nodes.Name) and node.ctx != "load":
        return "{% set %}"
    if isinstance(node, _NODES):
        return None
    return {nodes.For: _l("loops (for)"), nodes.Macro: _l("macros"), nodes.CallBlock: _l("macros"),
            nodes.Call: _l("function or method calls"), nodes.Pow: "**", nodes.Assign: "{% set %}",
            nodes.AssignBlock: "{% set %}", nodes.With: "{% with %}", nodes.Tuple: _l("lists"),
            nodes.List: _l("lists"), nodes.Dict: _l("lists"), nodes.Pair: _l("lists")}.get(
        type(node), "{%% %s %%}" % type(node).__name__.lower())


def _vet(tree: nodes.Template):
    """Refuse every construct outside the message language (walked with a stack: no recursion to exhaust)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        what = _refused(node)
        if what:
            raise _costly(_l("A message cannot use %(what)s; it can show the member's fields, with filters and "
                             "if/else.", what=what), node.lineno)
        if depth > MAX_DEPTH:
            raise _costly(_l("The template is nested too deeply."), node.lineno)
        stack.extend(reversed([(child, depth + 1) for child in node.iter_child_nodes()]))  # in source order


@lru_cache(maxsize=256)
def _compiled(source: str):
    """(template, None) or (None, why not): a refusal is remembered too, so a bad template
    costs one parse per process, not one per member. Messages stay lazy: translated when shown."""
    try:
        tree = _ENV.parse(source)
        _vet(tree)
        return _ENV.from_string(tree), None
    except Exception as exc:  # noqa: BLE001 — a template is user code: any error it raises is theirs
        return None, _why(exc)


def _why(exc: Exception) -> tuple:
    """(code, message, line) of a template's failure, the message in plain words for the
    person who wrote it (Jinja's own wording goes to the log)."""
    if isinstance(exc, Refused):
        return exc.code, exc.message, exc.lineno
    if isinstance(exc, MemoryError):
        return "template_too_long", _too_long().message, None
    if isinstance(exc, RecursionError):  # Jinja's parser or compiler on brackets nested thousands deep
        return "template_too_costly", _l("The template is nested too deeply."), None
    technical = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
    log.info("template refused: %s", technical)
    return "template_invalid", plain_error(technical), getattr(exc, "lineno", None) or _template_line(exc)


def _template_line(exc: Exception) -> int | None:
    """The template line a render-time error happened on: Jinja maps its frames back to the
    template's lines (file name "<template>" for a template made from a string)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_BLOCK_END = {"if": "{% endif %}", "for": "{% endfor %}", "macro": "{% endmacro %}", "with": "{% endwith %}"}


def _tag(name: str) -> str:
    return "{%% %s %%}" % name


def plain_error(message: str):
    """Jinja's message about a template, said the way the person who wrote it thinks of it:
    what is wrong and what to write instead. Unknown wordings get a general hint."""
    for pattern, explain in _PLAIN:
        match = re.match(pattern, message or "", re.S)
        if match:
            return explain(*match.groups())
    return _l("The template cannot be read: check that every “{{” is closed with “}}” and every “{%” with “%}”.")


_PLAIN = (
    (r"'(\w+)' is undefined", lambda name: _l(
        "“%(name)s” is not something a message can show. It can show: %(names)s.", name=name,
        names=", ".join(VARIABLES))),
    (r"'None' has no attribute '(\w+)'", lambda attr: _l(
        "Some members get this message without a coupon (none is given, or the stock has run out): put "
        "“coupon.%(attr)s” between %(open)s and %(close)s.", attr=attr, open="{% if coupon %}",
        close="{% endif %}")),
    (r"'dict object' has no attribute '(\w+)'", lambda attr: _l(
        "A coupon has no “%(attr)s”: it has name, code and valid_until.", attr=attr)),
    (r"'[\w ]+' has no attribute '(\w+)'", lambda attr: _l(
        "“.%(attr)s” cannot be shown: only the coupon has parts (coupon.name, coupon.code, coupon.valid_until).",
        attr=attr)),
    (r"access to attribute '(\w+)'", lambda attr: _l("A message cannot look inside “%(attr)s”.", attr=attr)),
    (r"Unexpected end of template.*needs to be closed is '(\w+)'", lambda tag: _l(
        "A “%(open)s” is not closed: add “%(close)s” where it should end.", open=_tag(tag),
        close=_BLOCK_END.get(tag, _tag("end" + tag)))),
    (r"Encountered unknown tag '(\w+)'\..*needs to be closed is '(\w+)'", lambda found, tag: _l(
        "“%(found)s” does not belong here: the “%(open)s” before it ends with “%(close)s”.", found=_tag(found),
        open=_tag(tag), close=_BLOCK_END.get(tag, _tag("end" + tag)))),
    (r"Encountered unknown tag '(end\w*|else|elif)'\.", lambda found: _l(
        "“%(found)s” has no “%(open)s” before it.", found=_tag(found), open="{% if … %}")),
    (r"Encountered unknown tag '(\w+)'", lambda found: _l(
        "A message cannot use “%(found)s”; it can use %(allowed)s.", found=_tag(found),
        allowed="{% if … %} {% elif … %} {% else %} {% endif %}")),
    (r"No filter named '(\w+)'", lambda name: _l(
        "There is no filter called “%(name)s”. A message can use: %(filters)s.", name=name,
        filters=", ".join(SAFE_FILTERS))),
    (r"No test named '(\w+)'", lambda name: _l("There is no test called “%(name)s”.", name=name)),
    (r"unexpected char ['\"]([\"'])['\"]", lambda char: _l(
        "A quotation mark (%(char)s) is not closed.", char=char)),
    (r"unexpected char '(.)'", lambda char: _l(
        "“%(char)s” is not understood here: inside “{{ }}” write a name such as {{ name }}.", char=char)),
    (r"unexpected '(.+)'", lambda token: _l(
        "“%(token)s” is not expected here: check that every “{{” is closed with “}}” and every “{%%” with “%%}”.",
        token=token)),
    (r"unexpected end of template", lambda: _l(
        "The template ends before a “{{” or “{%” is closed with “}}” or “%}”.")),
    (r"expected token '[^']+', got '([^']+)'", lambda got: _l(
        "“%(got)s” is not expected here: one “{{ }}” shows one thing, e.g. {{ name }}{{ title }}.", got=got)),
    (r"Expected an expression", lambda: _l(
        "Something is missing inside “{{ }}” or “{% %}”: write a name such as {{ name }}.")),
    (r"tag name expected", lambda: _l("“{% %}” needs a word such as if, else or endif.")),
)


def _render(source: str, context: dict) -> str:
    if len(source) > MAX_SOURCE:  # before parsing: a body written straight into the database
        raise _too_long(_l("A template is at most %(max)d characters.", max=MAX_SOURCE))
    template, why = _compiled(source)
    if why:
        raise Refused(*why)
    deadline = time.monotonic() + RENDER_SECONDS
    out, size = [], 0
    for chunk in template.generate(context):  # counted as it streams: stop at the limit, not after it
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _too_long()
        if time.monotonic() > deadline:
            break
        out.append(chunk)
    if time.monotonic() > deadline:
        raise _costly(_l("The message takes too long to write."))
    return "".join(out)


def render(source: str, context: dict, *, field: str = "body") -> str:
    """A part of a message for a member; 422 `template_invalid`, `template_too_costly` or
    `template_too_long` naming the field (and line) if it cannot be written."""
    try:
        return _render(source or "", context)
    except Exception as exc:  # noqa: BLE001 — a template is user code: any error it raises is theirs
        code, message, line = _why(exc)
        where = _(" (line %(line)d)", line=line) if line else ""
        raise Invalid(_("The template cannot be used%(where)s: %(error)s", where=where, error=message),
                      code=code, field=field) from None


SAMPLE_COUPON_DAYS = 30  # the template page's sample coupon (no campaign yet): one sent today, good for 30 days


def sample_coupon(name: str | None = None) -> dict:
    """A coupon as a template shows it: a campaign's previews use its own type and the expiry
    its send gives (service.preview); without a campaign, one sent today for 30 days."""
    until = local_today() + timedelta(days=SAMPLE_COUPON_DAYS - 1)
    return {**SAMPLE_COUPON, "valid_until": until.isoformat(), **({"name": name} if name else {})}


def sample_context(with_coupon: bool) -> dict:
    return {**SAMPLE, "coupon": sample_coupon() if with_coupon else None}


def check(subject: str, body: str, *, with_coupon: bool = True, field_prefix: str = ""):
    """Render both parts against a sample member; 422 naming the part and line (see render)."""
    for field, source in (("subject", subject), ("body", body)):
        render(source or "", sample_context(with_coupon), field=field_prefix + field)


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
    if template_id and db.session.scalar(select(Campaign.id).where(
            Campaign.template_id == template_id, Campaign.channel == "sms", Campaign.marketing.is_(True),
            Campaign.state.in_(("draft", "scheduled", "running", "paused"))).limit(1)):
        optout.check_sms_body(body)  # a marketing SMS uses it
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
