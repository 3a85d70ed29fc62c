"""Who may see a card's full number and its signed QR payload.

Either one is as good as the card at a till (a typed number is accepted, and small
payments need no PIN), so only the roles that print cards - the same ones allowed to fetch
the QR image - see them. Everyone else sees 86**********3456 and no payload, in JSON
(member, card, scan, checkout) and on staff pages alike.
"""
from flask import g, has_app_context
from marshmallow import fields

from ..auth.roles import ADMIN, MEMBER_DESK
from . import codes

# The roles of the card QR and print routes (cards/api.py, cards/views.py).
CARD_PRINTERS = MEMBER_DESK | {ADMIN}


def prints_cards() -> bool:
    actor = g.get("actor") if has_app_context() else None
    return actor is not None and actor.role in CARD_PRINTERS


def mask_card_no(card_no: str | None) -> str | None:
    """Keep the fixed prefix and the last 4 digits: enough to say "the card ending 3456"."""
    if not card_no:
        return card_no
    head = len(codes.PREFIX)
    return card_no[:head] + "*" * (len(card_no) - head - 4) + card_no[-4:]


def card_no_for_viewer(card_no: str | None) -> str | None:
    return card_no if prints_cards() else mask_card_no(card_no)


def qr_payload_for_viewer(card_no: str | None) -> str | None:
    return codes.qr_payload(card_no) if card_no and prints_cards() else None


class CardNumber(fields.Str):
    """A card number (or a card's) in JSON: in full for the roles that print cards, else masked."""

    def __init__(self, **kwargs):
        metadata = {"description": "16 digits for roles that print cards (front desk, manager, admin); "
                                   "masked for the others: 86**********3456", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and not isinstance(value, str):
            value = value.card_no
        return super()._serialize(card_no_for_viewer(value), attr, obj, **kwargs)


class QrPayload(fields.Str):
    """The signed code a printed card's QR carries, from the card number; null for roles that
    do not print cards."""

    def __init__(self, **kwargs):
        super().__init__(attribute="card_no", allow_none=True, dump_only=True, metadata={
            "description": "The signed code printed as the card's QR (what a scanner reads); "
                           "null for roles that do not print cards."}, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(qr_payload_for_viewer(value), attr, obj, **kwargs)
