"""Input bounds enforced before any view runs, so hostile input is a coded 4xx, never a 500.

* Ids in paths are 32-bit like their columns: `/members/2147483648` is a 404, not a
  database overflow (the `int` URL converter is bounded for every route).
* JSON nested deeper than MAX_JSON_DEPTH is refused as 400 `malformed_json` before a view
  parses it (Python's parser would otherwise hit its recursion limit).
* Every response says nosniff and a same-origin referrer policy; staff pages also carry a
  Content-Security-Policy: scripts from our own files only, and no framing (clickjacking).
* Control characters (NUL and the like) in a path, a query or a JSON body are 422
  `invalid_characters` naming the field; in a staff form they are shown beside the field.
Values that reach the database anyway and cannot be stored there (an out-of-range number,
a NUL character in text) are answered 422 `invalid_value` by the error handlers.
"""
import json
import re

from flask import request
from flask_babel import gettext as _
from werkzeug.routing import BaseConverter, IntegerConverter

MAX_ID = 2**31 - 1
MAX_JSON_DEPTH = 64
MAX_ANONYMOUS_BODY = 16 * 1024  # the one anonymous API body is a username and a password


class CardNumberConverter(BaseConverter):
    """`<card:…>`: a card number is digits, so `/cards/scan` is never card "scan"."""
    regex = r"[0-9]{1,32}"


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: ASCII digits, 0 … 2³¹−1 (the range of the id columns)."""
    regex = r"[0-9]+"

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON body nests arrays/objects deeper than `limit` (brackets inside strings
    are skipped). Linear in the body's length; only the bytes before the answer are read."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


# Control characters (NUL, ESC, …) and lone surrogates are never part of a name, a note or a
# code; tab, line feed and carriage return are (multi-line notes, pasted text).
# Bidirectional overrides (U+202A-202E, U+2066-2069) are refused too: they make a name display
# as something else on a receipt or a list ("Trojan source" spoofing).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def forbidden_character_in(value, path="") -> str | None:
    """The path ("items.0.sku") of the first string, key included, holding a control
    character, or None. Walks dicts and lists."""
    if isinstance(value, str):
        return path or "_schema" if _FORBIDDEN.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _FORBIDDEN.search(key):
                return where
            found = forbidden_character_in(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = forbidden_character_in(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def _request_forbidden_field() -> str | None:
    """Where a path segment, a query value or a JSON body carries a control character."""
    found = forbidden_character_in(dict(request.view_args or {})) or forbidden_character_in(
        {k: request.args.getlist(k) for k in request.args})
    if found:
        return found.rsplit(".", 1)[0] if found[-1].isdigit() else found
    if request.is_json and request.content_length:
        try:
            body = json.loads(request.get_data(cache=True))
        except ValueError:
            return None  # the parser answers malformed_json
        return forbidden_character_in(body)
    return None


PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'")


def install(app):
    """Register the bounded id converter (before any route is added), the JSON depth check
    and the security headers."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["card"] = CardNumberConverter

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html" and not request.path.startswith("/api/"):  # the API docs page excepted
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.before_request
    def _refuse_bad_input():
        from ..errors import Invalid, error_response
        if (request.path.startswith("/api/") and "Authorization" not in request.headers
                and (request.content_length or 0) > MAX_ANONYMOUS_BODY):
            return error_response(413, "payload_too_large", "A request without a token carries at most 16 KB.")
        if request.is_json and request.content_length and json_too_deep(request.get_data(cache=True)):
            return error_response(400, "malformed_json", f"The JSON is nested more than {MAX_JSON_DEPTH} deep.")
        field = _request_forbidden_field()
        if field:  # HTML pages get the error page; form fields are checked beside the field (forms.py)
            raise Invalid(_("A field holds control characters, which cannot be stored."),
                          code="invalid_characters", field=field)
