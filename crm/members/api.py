"""JSON API: members, levels, corporate accounts."""
from flask import g
from flask.views import MethodView
from marshmallow import fields, validate

from ..auth.access import allow
from ..auth.roles import ADMINS, ANY_STAFF, MANAGERS, MEMBER_DESK, MEMBER_LOOKUP
from ..core.api import Blueprint, ErrorSchema
from ..core.idempotency import unit_of_work
from ..core.paging import PageArgs, page_schema, paginate
from ..core.phones import sees_full_mobiles
from ..reports import accounts, exports
from ..reports.figures import period
from ..stores import service as stores
from . import companies, duplicates, levels, merge, referrals, search_limit, service
from .schemas import (
    CompanySchema,
    CompanyUpdateSchema,
    DuplicateSchema,
    ErasurePreviewSchema,
    ErasureResultSchema,
    ErasureSchema,
    ExportArgs,
    LevelSchema,
    LevelUpdateSchema,
    MemberCreateSchema,
    MemberExportSchema,
    MemberSchema,
    MemberSearchArgs,
    MemberUpdateSchema,
    MergeResultSchema,
    MergeSchema,
    PrivacyRequestArgs,
    PrivacyRequestSchema,
    ReferralReportQuery,
    ReferralReportSchema,
    ReferralsSchema,
)

blp = Blueprint("members_api", __name__, url_prefix="/api/v1", description="Members, levels, companies")


@blp.route("/members")
class Members(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.arguments(MemberSearchArgs, location="query")
    @blp.response(200, page_schema(MemberSchema, "MemberPage"))
    def get(self, args):
        """Find members by scanned card code, card number, mobile or name prefix.

        A mobile matches in full or by its last 4 digits; a prefix of one only for roles that see full
        mobiles (front desk, manager, admin). Searches count against MEMBER_SEARCH_LIMIT per user
        (scanned card codes do not): over it, 429 `rate_limited` with Retry-After."""
        search_limit.spend(g.actor, args["q"], args["page"], args["per_page"])
        items, total = paginate(service.search(args["q"], mobile_prefixes=sees_full_mobiles()),
                                args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}

    @allow(MEMBER_DESK)
    @unit_of_work()
    @blp.arguments(MemberCreateSchema)
    @blp.response(201, MemberSchema)
    def post(self, data):
        """Register a member (409 `mobile_taken` if the mobile is already a member's)."""
        return service.register(g.actor, data)


@blp.route("/members/<int:member_id>")
class MemberItem(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.response(200, MemberSchema)
    @blp.alt_response(410, schema=ErrorSchema, description="The member was merged into another: "
                      "`member_merged`, details.survivor_id names the survivor")
    def get(self, member_id):
        """One member's profile (410 `member_merged` naming the survivor for a merged duplicate)."""
        return merge.refuse_tombstone(service.get_member(member_id))

    @allow(MEMBER_DESK)
    @unit_of_work()
    @blp.arguments(MemberUpdateSchema)
    @blp.response(200, MemberSchema)
    def patch(self, data, member_id):
        """Edit a member's profile (only the fields sent change; 409 `member_merged` for a merged duplicate)."""
        return service.update(g.actor, member_id, data)


@blp.route("/levels")
class Levels(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, LevelSchema(many=True))
    def get(self):
        """Member levels, entry level first."""
        return levels.list_levels()

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(LevelSchema)
    @blp.response(201, LevelSchema)
    def post(self, data):
        """Add a level."""
        return levels.create_level(g.actor, **data)


@blp.route("/levels/<code>")
class LevelItem(MethodView):
    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(LevelUpdateSchema(partial=True, exclude=("code",)))
    @blp.response(200, LevelSchema)
    def patch(self, data, code):
        """Change a level's name, rank, multiplier or thresholds."""
        return levels.update_level(g.actor, code, **data)


class CompanySearchArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))


def _with_spend(items):
    spend = accounts.annual_spend(c.id for c in items)
    for company in items:
        company.annual_spend = spend.get(company.id, 0)
    return items


@blp.route("/companies")
class Companies(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.arguments(CompanySearchArgs, location="query")
    @blp.response(200, page_schema(CompanySchema, "CompanyPage"))
    def get(self, args):
        """Corporate accounts, optionally filtered by name."""
        items, total = paginate(companies.search(args["q"]), args["page"], args["per_page"])
        return {"items": _with_spend(items), "total": total, "page": args["page"], "per_page": args["per_page"]}

    @allow(MEMBER_DESK)
    @unit_of_work()
    @blp.arguments(CompanySchema)
    @blp.response(201, CompanySchema)
    def post(self, data):
        """Add a corporate account."""
        return companies.create(g.actor, **data)


@blp.route("/companies/<int:company_id>")
class CompanyItem(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.response(200, CompanySchema)
    def get(self, company_id):
        """One corporate account, with its annual spend."""
        return _with_spend([companies.get(company_id)])[0]

    @allow(MEMBER_DESK)
    @unit_of_work()
    @blp.arguments(CompanyUpdateSchema(partial=True))
    @blp.response(200, CompanySchema)
    def patch(self, data, company_id):
        """Change a corporate account."""
        return companies.update(g.actor, company_id, **data)


@blp.route("/members/<int:member_id>/referrals")
@allow(MEMBER_LOOKUP)
@blp.response(200, ReferralsSchema)
def member_referrals(member_id):
    """The member's referral code, who referred them, the members they referred (newest first)
    with each one's reward, and the rewards counted against this year's cap."""
    return referrals.summary(service.get_member(member_id))


@blp.route("/reports/referrals")
@allow(MANAGERS)
@blp.arguments(ReferralReportQuery, location="query")
@blp.response(200, ReferralReportSchema)
def referral_report(args):
    """Referrals 老带新 in a period, per referrer and per store of the referee's registration:
    referees registered, rewards granted in the period and standing (`rewarded`) or taken back by
    a void (`reversed`), points and coupons given by the standing ones (`format=csv|xlsx` for a
    file of the per-referrer rows)."""
    store_id = stores.get_by_code(args["store_code"]).id if args["store_code"] else None
    figures = referrals.report(period(args["from_"], args["to"]), store_id)
    if args["format"]:
        return exports.download(args["format"], "referrals", referrals.EXPORT_HEADER, referrals.export_rows(figures))
    return figures


# PIPL requests (members/pipl.py) ---------------------------------------------------------------

@blp.route("/members/<int:member_id>/export")
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(ExportArgs, location="query")
@blp.response(200, MemberExportSchema)
def member_export(args, member_id):
    """Everything held about a member (PIPL access and copy), as a JSON file to download: profile,
    consents with their history, cards, points and stored-value ledgers, bills with lines and
    tenders, coupons, messages, level changes, referrals and the audit rows about them. The
    request is logged with its `reason`."""
    from flask import Response, stream_with_context
    from flask_babel import gettext as _

    from ..core import reasons
    from ..core.timeutil import local_today
    from ..extensions import db
    from . import pipl
    service.get_member(member_id)  # 404 before anything is logged
    reason = reasons.required(args["reason"], _("Say why the copy is made (the member's request)."))
    pipl.log_request(g.actor, member_id, "export", reason, format="json")
    db.session.commit()
    filename = f"member-{member_id}-{local_today().isoformat()}.json"
    # Streamed: the bills (all of a regular's years of them) are read and sent a batch at a time.
    return Response(stream_with_context(pipl.json_chunks(pipl.export(member_id, lazy_bills=True))),
                    mimetype="application/json", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.route("/members/<int:member_id>/erasure")
class MemberErasure(MethodView):
    @allow(MANAGERS)
    @blp.response(200, ErasurePreviewSchema)
    def get(self, member_id):
        """What an erasure would settle: the points (forfeited) and the stored value (principal
        refunded or forfeited, bonus forfeited); `anonymised_at` if it was done already."""
        from . import pipl
        member = service.get_member(member_id)
        return {"member_id": member.id, "anonymised_at": member.anonymised_at, **pipl.balances(member.id)}

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(ErasureSchema)
    @blp.response(200, ErasureResultSchema)
    def post(self, data, member_id):
        """Erase a member by anonymisation (PIPL deletion; manager, with a reason): personal data
        removed, consents withdrawn, live card cancelled, balances settled by ledger entries as
        `wallet_rule` says; bills, ledgers and reports stay. `confirm` must repeat the balances
        of GET …/erasure (409 `balances_changed` otherwise); 409 `member_anonymised` if done."""
        from . import pipl
        store = stores.get_by_code(data["store_code"]) if data.get("store_code") else None
        return pipl.anonymise(g.actor, member_id, reason=data["reason"], wallet_rule=data["wallet_rule"],
                              store=store, confirm=data["confirm"])


@blp.route("/privacy-requests")
@allow(MANAGERS)
@blp.arguments(PrivacyRequestArgs, location="query")
@blp.response(200, page_schema(PrivacyRequestSchema, "PrivacyRequestPage"))
def privacy_requests(args):
    """The PIPL request log, newest first: every export, correction and erasure with who, when and why."""
    from . import pipl
    items, total = paginate(pipl.requests_page(args["kind"], args["member_id"]), args["page"], args["per_page"])
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


# Merges and duplicates (members/merge.py, members/duplicates.py) ---------------------------------

@blp.route("/members/<int:member_id>/merge", methods=["POST"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(MergeSchema)
@blp.response(200, MergeResultSchema)
def member_merge(data, member_id):
    """Merge a duplicate (`from_member_id`) into this member (manager, with a reason): points lots,
    stored value, issued coupons, the live card, bills and top-ups move to this member (ledgers by
    `transfer` entries); the duplicate becomes a tombstone (410 `member_merged` on GET). 422
    `merge_same_member` for a member into itself; 409 `member_merged` into a tombstone, 409
    `already_merged` for a duplicate merged before."""
    return merge.merge(g.actor, member_id, data["from_member_id"], data["reason"], data["chosen"])


@blp.route("/members/<int:member_id>/duplicates")
@allow(MEMBER_LOOKUP)
@blp.response(200, DuplicateSchema(many=True))
@blp.alt_response(410, schema=ErrorSchema, description="The member was merged into another")
def member_duplicates(member_id):
    """Likely duplicates of a member: the same name and birthday, the same mobile written another
    way (+86, spaces), or the same email ignoring case."""
    return duplicates.find(merge.refuse_tombstone(service.get_member(member_id)))
