"""Staff pages of crm.corporate (managers): company accounts, signers, payments, statements, ageing."""
from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core.forms import commit_or_errors, errors_of
from ..core.money import format_fen
from ..core.timeutil import local_today
from ..errors import DomainError, Invalid
from ..extensions import db
from ..members import companies
from ..members import service as members
from ..members.models import Member
from ..reports import exports
from . import documents, service
from .schemas import AccountInSchema, AgeingQuery, PaymentInSchema

bp = Blueprint("corporate", __name__, url_prefix="/corporate")



def _method_names():
    return service.payment_method_names()


@bp.route("/", methods=["GET", "POST"])
@allow(MANAGERS)
def accounts():
    """Every company account with what it owes and has left; a form to open one."""
    errors, form = {}, request.form
    if request.method == "POST":
        def save():
            company = companies.find_by_name(form.get("company", ""))
            if company is None:
                raise Invalid(_("No company of this name: add it on a member's page or the companies list first."),
                              code="unknown_company", field="company")
            data = AccountInSchema().load({"credit_limit": form.get("credit_limit", "").strip()})
            if service.find_account(company.id) is not None:
                raise Invalid(_("This company already has an account."), code="company_account_exists",
                              field="company")
            service.save_account(g.actor, company.id, **data)
            return {"company_id": company.id}
        done, errors = commit_or_errors(save, once=form.get("form_token", ""))
        if not errors:
            flash(_("Account opened."), "success")
            return redirect(url_for("corporate.account", company_id=done["company_id"]))
    company_names = db.session.scalars(select(companies.Company.name).order_by(companies.Company.name)).all()
    return render_template("corporate/accounts.html", accounts=service.accounts(), errors=errors, form=form,
                           company_names=company_names), 422 if errors else 200


def _account_page(company_id, errors=None, status=200):
    account = service.get_account(company_id)
    entries = db.session.scalars(select(service.CompanyAccountEntry)
                                 .where(service.CompanyAccountEntry.account_id == account.id)
                                 .order_by(service.CompanyAccountEntry.id.desc()).limit(20)).all()
    colleagues = db.session.scalars(select(Member).where(Member.company_id == company_id,
                                                         Member.merged_into_id.is_(None),
                                                         Member.anonymised_at.is_(None))
                                    .order_by(Member.name).limit(200)).all()
    signer_ids = {s.member_id for s in account.signers}
    today = local_today()
    return render_template("corporate/account.html", account=account, entries=entries, errors=errors or {},
                           form=request.form, colleagues=[m for m in colleagues if m.id not in signer_ids],
                           methods=_method_names(), kind_name=documents.kind_name, today=today), status


@bp.route("/<int:company_id>", methods=["GET", "POST"])
@allow(MANAGERS)
def account(company_id):
    """One account: limit and state, signers, a payment, the latest entries."""
    if request.method == "POST":
        form = request.form

        def save():
            data = AccountInSchema().load({"credit_limit": form.get("credit_limit", "").strip(),
                                           "active": form.get("active") == "1"})
            service.save_account(g.actor, company_id, **data)
        _done, errors = commit_or_errors(save, once=form.get("form_token", ""))
        if errors:
            return _account_page(company_id, errors, 422)
        flash(_("Account saved."), "success")
        return redirect(url_for("corporate.account", company_id=company_id))
    return _account_page(company_id)


@bp.post("/<int:company_id>/signers")
@allow(MANAGERS)
def add_signer(company_id):
    form = request.form

    def save():
        ref = form.get("member", "").strip()
        member_id = int(ref) if ref.isdecimal() and len(ref) < 10 else None
        if member_id is None and ref:
            found = db.session.scalars(members.search(ref)).first() if members.is_exact_query(ref) else None
            member_id = found.id if found else None
        if member_id is None:
            raise Invalid(_("Choose a member of this company, or type their mobile number."), code="unknown_member",
                          field="member")
        service.add_signer(g.actor, company_id, member_id)
    _done, errors = commit_or_errors(save)
    if errors:
        if "member_id" in errors:
            errors["member"] = errors.pop("member_id")
        return _account_page(company_id, errors, 422)
    flash(_("Signer added."), "success")
    return redirect(url_for("corporate.account", company_id=company_id))


@bp.post("/<int:company_id>/signers/<int:member_id>/remove")
@allow(MANAGERS)
def remove_signer(company_id, member_id):
    _done, errors = commit_or_errors(lambda: service.remove_signer(g.actor, company_id, member_id))
    if errors:
        return _account_page(company_id, errors, 422)
    flash(_("Signer removed."), "success")
    return redirect(url_for("corporate.account", company_id=company_id))


@bp.post("/<int:company_id>/payments")
@allow(MANAGERS)
def payment(company_id):
    form = request.form

    def save():
        data = PaymentInSchema().load({k: form.get(k, "").strip() for k in ("amount", "method", "reference")
                                       } | ({"received_on": form["received_on"]} if form.get("received_on") else {}))
        entry = service.record_payment(g.actor, company_id, **data)
        return {"amount": -entry.amount}
    done, errors = commit_or_errors(save, once=form.get("form_token", ""))
    if errors:
        return _account_page(company_id, errors, 422)
    flash(_("Payment of %(amount)s recorded.", amount=format_fen(done["amount"])), "success")
    return redirect(url_for("corporate.account", company_id=company_id))


@bp.get("/<int:company_id>/statements/<int:year>/<int:month>")
@allow(MANAGERS)
def statement(company_id, year, month):
    """The month's statement as a page, or `format=xlsx|pdf`."""
    fmt = request.args.get("format", "")
    try:
        st = service.statement(company_id, year, month)
    except DomainError as exc:
        if isinstance(exc, Invalid):
            today = local_today()
            flash(str(exc.message), "error")
            return redirect(url_for("corporate.statement", company_id=company_id, year=today.year, month=today.month))
        raise
    if fmt == "xlsx":
        return documents.statement_xlsx(st)
    if fmt == "pdf":
        return documents.statement_pdf(st)
    first = date(year, month, 1)
    previous = date(year - (month == 1), (month - 2) % 12 + 1, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return render_template("corporate/statement.html", st=st, kind_name=documents.kind_name, first=first,
                           previous=previous if previous.year >= 2000 else None,
                           following=following if following <= local_today() else None)


@bp.get("/ageing")
@allow(MANAGERS)
def ageing():
    """Ageing of what companies owe (page, or `format=csv|xlsx`)."""
    errors, report = {}, None
    try:
        args = AgeingQuery().load({k: v for k, v in request.args.items() if k in ("as_of", "format") and v})
        report = service.ageing(args["as_of"])
        if args["format"]:
            return exports.download(args["format"], "ageing", documents.ageing_header(),
                                    documents.ageing_rows(report))
    except (ValidationError, DomainError) as exc:
        errors = errors_of(exc)
    return render_template("corporate/ageing.html", report=report, errors=errors, form=request.args,
                           header=documents.ageing_header(),
                           rows=list(documents.ageing_rows(report)) if report else []), 422 if errors else 200
