"""The outcome of an action on the member page, shown next to the form that acted.

A flash message is drawn at the top of the page, which after a redirect to the wallet or
cards section is scrolled out of view. A notice is kept in the session for one member and
one section (an anchor on the member page) and drawn inside that section, so the redirect
to `…#wallet` lands with the message in view."""
from flask import session

_KEY = "member_notice"


def notify(member_id: int, anchor: str, message, category: str = "success"):
    session[_KEY] = {"member_id": member_id, "anchor": anchor, "message": str(message), "category": category}


def take(member_id: int) -> dict:
    """{anchor: (category, message)} for this member's page, once."""
    notice = session.get(_KEY)
    if not notice or notice.get("member_id") != member_id:
        return {}
    session.pop(_KEY, None)
    return {notice["anchor"]: (notice["category"], notice["message"])}
