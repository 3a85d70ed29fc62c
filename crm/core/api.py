"""The JSON API's building blocks: a Blueprint whose body parsing is strict and an Api whose
OpenAPI document (3.1) says what the API really answers.

Every api.py builds its routes on `Blueprint` from here, so a JSON body is read with typed
numbers (crm.core.fields.json_body), a body that is not JSON is a 415 instead of being read as
empty, and the document each operation gets lists the error responses it can give in the one
error shape the API uses: `{"error": {"code", "message", "details"}}`.
"""
import re
from http import HTTPStatus

import flask
from flask import request
from flask_smorest import Api as _Api
from flask_smorest import Blueprint as _Blueprint
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser

from .fields import document_fields, json_body

IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 128},
    "description": "Send the same key again (same staff, same body) to get the first answer back "
                   "instead of doing the work twice; a different body under a used key is 422. "
                   "An empty value is the same as no key.",
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class _StrictParser(FlaskParser):
    def parse(self, argmap, req=None, *, location=None, **kwargs):
        location = location or self.location
        if location != "json":
            return super().parse(argmap, req, location=location, **kwargs)
        if _has_body() and not request.is_json:
            from ..errors import UnsupportedMediaType
            raise UnsupportedMediaType()
        with json_body():
            return super().parse(argmap, req, location=location, **kwargs)


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


class Blueprint(_Blueprint):
    ARGUMENTS_PARSER = _StrictParser()


class ErrorDetailSchema(Schema):
    code = fields.Str(required=True, metadata={"description": "stable snake_case code, e.g. not_found"})
    message = fields.Str(required=True, metadata={"description": "English text for people"})
    details = fields.Dict(required=True, metadata={"description": "what the code needs: fields, limits, ids"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


# Which error statuses an operation documents, and why it can give them.
_ALWAYS = {400: "Malformed request or JSON", 401: "No valid Bearer token",
           403: "The role may not do this", 422: "Some input is invalid (details.fields names them)",
           429: "Too many requests", 503: "Temporarily unavailable; retry after Retry-After seconds"}
_WRITES = {409: "Conflicts with the current state or lost a race; reload and retry",
           413: "Body too large", 415: "Body is not JSON"}


class Api(_Api):
    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every error status is listed per operation instead

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        document_fields(self)
        self._finished = None

    def _openapi_json(self):
        if self._finished is None:
            self._finished = finish_document(self.spec.to_dict(), _public_operations(flask.current_app))
        return flask.current_app.response_class(flask.json.dumps(self._finished, indent=2, sort_keys=False),
                                                mimetype="application/json")


def idempotent(view):
    """Document the Idempotency-Key header on a view (unit_of_work(idempotent=True) calls it)."""
    return _Blueprint.doc(parameters=[IDEMPOTENCY_HEADER])(view)


def _public_operations(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of the API operations that need no token (`@public`)."""
    from ..auth.access import rule_for
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if rule_for(app.view_functions[rule.endpoint], method) == "public":
                found.add((path, method.lower()))
    return found


def finish_document(doc: dict, public: set[tuple[str, str]]) -> dict:
    """Add to every operation the error responses it can give, the file types of exports,
    and `security: []` where no token is needed."""
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            statuses = dict(_ALWAYS)
            statuses[404] = "No such resource, or the body names one that does not exist"
            if method != "get":
                statuses.update(_WRITES)
            if (path, method) in public:
                op["security"] = []
                statuses.pop(403)
            responses = op.setdefault("responses", {})
            for status, response in responses.items():
                if "$ref" not in response:
                    response.setdefault("description", HTTPStatus(int(status)).phrase)
            for status, why in statuses.items():
                if "$ref" in responses.get(str(status), {"$ref": None}):  # flask-smorest's generic one
                    responses[str(status)] = {"description": why,
                                              "content": {"application/json": {"schema": error_ref}}}
            # gunicorn answers an over-long request line itself, in HTML, before the app sees it
            responses["414"] = {"description": "Request line too long",
                                "content": {"text/html": {"schema": {"type": "string"}}}}
            responses["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                           "description": "seconds to wait"}}
            responses["429"]["headers"] = responses["503"]["headers"]
            _document_files(op)
            _optional_body(op, doc["components"]["schemas"])
    return doc


def _optional_body(op, schemas):
    """A body whose fields are all optional may be left out (e.g. a card freeze without a reason)."""
    body = op.get("requestBody")
    ref = ((body or {}).get("content", {}).get("application/json", {}).get("schema") or {}).get("$ref", "")
    if ref and not schemas.get(ref.rsplit("/", 1)[-1], {}).get("required"):
        body["required"] = False


def _document_files(op):
    """Reports that take ?format=csv|xlsx answer with those files on the same 200."""
    formats = next((p["schema"].get("enum", []) for p in op.get("parameters", [])
                    if p.get("in") == "query" and p.get("name") == "format"), [])
    ok = op["responses"].get("200")
    if not ok or not formats:
        return
    content = ok.setdefault("content", {})
    content.setdefault("application/json", {"schema": {}})  # the default format
    if "csv" in formats:
        content["text/csv"] = {"schema": {"type": "string"}}
    if "xlsx" in formats:
        content[XLSX] = {"schema": {"type": "string", "contentMediaType": XLSX}}
    if "pdf" in formats:  # a company's statement
        content["application/pdf"] = {"schema": {"type": "string", "contentMediaType": "application/pdf"}}
