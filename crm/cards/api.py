"""JSON API: cards."""
from types import SimpleNamespace

from flask import Response, g
from flask.views import MethodView

from ..auth.access import allow, read_only
from ..auth.roles import COUNTER, MEMBER_DESK, MEMBER_LOOKUP
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..points import service as points
from ..stores import service as stores
from ..wallet import service as wallet
from . import images, service
from .schemas import (
    CardActionSchema,
    CardIssueSchema,
    CardReplaceSchema,
    CardSchema,
    ScanResultSchema,
    ScanSchema,
)

blp = Blueprint("cards_api", __name__, url_prefix="/api/v1", description="Member cards")


@blp.route("/members/<int:member_id>/cards")
class MemberCards(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.response(200, CardSchema(many=True))
    def get(self, member_id):
        """All cards a member has held, newest first."""
        return service.cards_of(member_id)

    @allow(MEMBER_DESK)
    @unit_of_work(idempotent=True)
    @blp.arguments(CardIssueSchema)
    @blp.response(201, CardSchema)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}])
    def post(self, data, member_id):
        """Issue a card; the card fee is recorded as revenue of the issuing store."""
        return service.issue(g.actor, member_id, **data)


@blp.route("/cards/<card:card_no>")
@allow(MEMBER_LOOKUP)
@blp.response(200, CardSchema)
def get_card(card_no):
    """One card."""
    return service.get_card(card_no)


def _qr_route(ext, mimetype, render):
    @allow(MEMBER_DESK)
    def view(card_no):
        card = service.get_card(card_no)
        return Response(render(service.qr_payload(card.card_no)), mimetype=mimetype,
                        headers={"Cache-Control": "private, max-age=3600"})
    view.__name__ = f"card_qr_{ext}"
    view.__doc__ = f"The card's QR code as {ext.upper()}."
    blp.route(f"/cards/<card:card_no>/qr.{ext}")(blp.doc(responses={200: {"content": {mimetype: {}}}})(view))


_qr_route("png", "image/png", images.png)
_qr_route("svg", "image/svg+xml", images.svg)


def _state_route(action, summary):
    @allow(MEMBER_DESK)
    @unit_of_work()
    @blp.arguments(CardActionSchema, required=False)
    @blp.response(200, CardSchema)
    def view(data, card_no):
        return service.change_state(g.actor, card_no, action, (data or {}).get("reason", ""))
    view.__name__ = f"card_{action}"
    view.__doc__ = summary
    blp.route(f"/cards/<card:card_no>/{action}", methods=["POST"])(view)


_state_route("lost", "Report a card lost: it stops working at once.")
_state_route("freeze", "Freeze a card (e.g. at the member's request).")
_state_route("unfreeze", "Unfreeze a frozen card.")
_state_route("cancel", "Cancel a card for good.")


@blp.route("/cards/<card:card_no>/replace", methods=["POST"])
@allow(MEMBER_DESK)
@unit_of_work(idempotent=True)
@blp.arguments(CardReplaceSchema)
@blp.response(201, CardSchema)
def replace_card(data, card_no):
    """Replace a card: the old one dies now, the member keeps everything on the new one."""
    return service.replace(g.actor, card_no, **data)


@blp.route("/cards/scan", methods=["POST"])
@allow(COUNTER)
@read_only
@blp.arguments(ScanSchema)
@blp.response(200, ScanResultSchema)
def scan(data):
    """Who is this card? 422 `invalid_code` for a forged or mistyped code."""
    card = service.scan(data["code"], with_member=True)
    member = service.holder(card)  # a merged duplicate's card: its survivor
    tz = stores.timezone_of(g.actor.store_id)
    return SimpleNamespace(member=member, card_no=card.card_no, points_balance=points.available(member.id),
                           wallet_balance=wallet.balances(member.id)["balance"],
                           birthday_today=service.birthday_today(member, tz))
