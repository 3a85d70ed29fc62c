"""JSON API of crm.corporate: company accounts (挂账), signers, payments, statements, ageing."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..reports import exports
from . import documents, service
from .schemas import (
    AccountInSchema,
    AccountSchema,
    AgeingQuery,
    AgeingSchema,
    PaymentInSchema,
    PaymentSchema,
    StatementQuery,
    StatementSchema,
)

blp = Blueprint("corporate_api", __name__, url_prefix="/api/v1", description="corporate")


# One view per path (a MethodView), so a path whose id is out of range is a 404 for every method:
# with one rule per method, Werkzeug answered such a path 405.
@blp.route("/companies/<int:company_id>/account")
class Account(MethodView):
    @allow(COUNTER)
    @blp.response(200, AccountSchema)
    def get(self, company_id):
        """A company's account: credit limit, what it owes, what is still available, its signers
        (404 `company_account_not_found` before one is opened)."""
        return service.get_account(company_id)

    @allow(MANAGERS)
    @unit_of_work(idempotent=True)
    @blp.arguments(AccountInSchema)
    @blp.response(200, AccountSchema)
    @blp.alt_response(201, schema=AccountSchema, description="the account opened")
    def put(self, data, company_id):
        """Open the company's account, or change its credit limit / suspend (`active: false`) it.
        A limit below what is owed is allowed: new charges are then refused until payments come in."""
        account, created = service.save_account(g.actor, company_id, **data)
        return account, 201 if created else 200


@blp.route("/companies/<int:company_id>/signers/<int:member_id>")
class Signer(MethodView):
    @allow(MANAGERS)
    @unit_of_work(idempotent=True)
    @blp.response(200, AccountSchema)
    def post(self, company_id, member_id):
        """Authorise a member of this company to sign bills to its account (422
        `signer_not_of_company` for a member of another company; again: no change, 200)."""
        _signer, created = service.add_signer(g.actor, company_id, member_id)
        return service.get_account(company_id), 201 if created else 200

    @allow(MANAGERS)
    @unit_of_work()
    @blp.response(200, AccountSchema)
    def delete(self, company_id, member_id):
        """Withdraw a member's authority to sign (404 `signer_not_found` if they had none)."""
        service.remove_signer(g.actor, company_id, member_id)
        return service.get_account(company_id)


@blp.route("/companies/<int:company_id>/account/payments", methods=["POST"])
@allow(MANAGERS)
@unit_of_work(idempotent=True)
@blp.arguments(PaymentInSchema)
@blp.response(201, PaymentSchema)
def payment(data, company_id):
    """A payment received from the company: lowers what it owes (never below zero: 422
    `payment_exceeds_owed` with `owed`). Ageing allocates it to the oldest charges first."""
    entry = service.record_payment(g.actor, company_id, **data)
    return {"payment": entry, "account": service.get_account(company_id)}


@blp.route("/companies/<int:company_id>/statements/<int:year>/<int:month>", methods=["GET"])
@allow(MANAGERS)
@blp.arguments(StatementQuery, location="query")
@blp.response(200, StatementSchema)
def statement(args, company_id, year, month):
    """The month's statement: opening owed, each charge (date, store, bill, signer), void and
    payment with the running balance, closing owed. `format=xlsx|pdf` for a file."""
    st = service.statement(company_id, year, month)
    if args["format"] == "xlsx":
        return documents.statement_xlsx(st)
    if args["format"] == "pdf":
        return documents.statement_pdf(st)
    return st


@blp.route("/companies/ageing", methods=["GET"])
@allow(MANAGERS)
@blp.arguments(AgeingQuery, location="query")
@blp.response(200, AgeingSchema)
def ageing(args):
    """What each company owes at the end of `as_of`, by the age of its charges (current = 0–30
    days, 31–60, 61–90, over 90), payments allocated to the oldest charges first.
    `format=csv|xlsx` for a file."""
    report = service.ageing(args["as_of"])
    if args["format"]:
        return exports.download(args["format"], "ageing", documents.ageing_header(), documents.ageing_rows(report))
    return report
