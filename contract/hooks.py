"""Schemathesis hooks: authenticate as the demo admin.

A request that signs out (DELETE /auth/token) gets a token of its own, so the fuzzer's
token is never the one revoked."""
import os

import requests
import schemathesis

BASE = os.environ.get("CONTRACT_BASE", "http://127.0.0.1:5000")


def _token() -> str:
    r = requests.post(f"{BASE}/api/v1/auth/token", json={"username": "admin", "password": "demo1234"}, timeout=30)
    r.raise_for_status()
    return r.json()["token"]


@schemathesis.auth()
class AdminToken:
    def get(self, case, ctx):
        return _token()

    def set(self, case, data, ctx):
        if case.method == "DELETE" and case.path.endswith("/auth/token"):
            data = _token()
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
