"""X-Request-ID: every answer carries one, so a log line, a client's report and the access log
(gunicorn.conf.py logs the response header) can be matched. A sane id sent by a proxy or a client
is kept; anything else is replaced by a fresh one."""
import re
import uuid

from flask import g, request

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def install(app):
    @app.before_request
    def _assign():
        sent = request.headers.get(HEADER, "")
        g.request_id = sent if _SANE.fullmatch(sent) else uuid.uuid4().hex

    @app.after_request
    def _echo(response):
        response.headers[HEADER] = g.get("request_id") or uuid.uuid4().hex
        return response
