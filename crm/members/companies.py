"""Corporate accounts 客户档案."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..core import audit
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..errors import Conflict
from ..extensions import db
from .models import Company


def find_by_name(name: str) -> Company | None:
    return db.session.scalar(select(Company).where(func.lower(Company.name) == name.strip().lower()))


def resolve(actor: Actor, name: str | None) -> Company | None:
    """The account of this name; an unknown company is recorded as a potential account."""
    if not name or not name.strip():
        return None
    company = find_by_name(name)
    if company is None:
        company = Company(name=name.strip(), account_class="potential")
        db.session.add(company)
        db.session.flush()
        audit.record(actor, "company.create", entity=company, name=company.name, implicit=True)
    return company


def create(actor: Actor, **data) -> Company:
    if find_by_name(data["name"]):
        raise Conflict(_("A company with that name exists."), code="company_exists", field="name")
    company = Company(**data)
    db.session.add(company)
    db.session.flush()
    audit.record(actor, "company.create", entity=company, name=company.name)
    return company


def update(actor: Actor, company_id: int, **changes) -> Company:
    company = get(company_id)
    if "name" in changes:
        other = find_by_name(changes["name"])
        if other is not None and other.id != company.id:
            raise Conflict(_("A company with that name exists."), code="company_exists", field="name")
    for field, value in changes.items():
        setattr(company, field, value)
    audit.record(actor, "company.update", entity=company, fields=sorted(changes))
    return company


def get(company_id: int) -> Company:
    return get_or_404(Company, company_id, _("No such company."))


def search(q: str | None):
    stmt = select(Company).order_by(Company.name)
    if q:
        stmt = stmt.where(Company.name.ilike(f"%{_escape(q)}%", escape="\\"))
    return stmt


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ids_by_name() -> dict[str, int]:
    """{company name: id} for every corporate account (imports match on name)."""
    return dict(db.session.execute(select(Company.name, Company.id)).all())
