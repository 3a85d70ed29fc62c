"""Real peers on loopback for end-to-end tests: the service (gunicorn, several workers) and a
fake SMS gateway."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# Production refuses to start without a strong SECRET_KEY (crm/auth/keys.py): servers started
# here get this one unless their settings name another.
SECRET_KEY = "test-only-Qm7vR2xK9pLw4TzN8cYb3HdF6jGs5Ue1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask_cli(env, *args):
    """Run `flask --app wsgi ...` against the given environment; raise on failure."""
    subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env={"SECRET_KEY": SECRET_KEY, **env},
                   check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def gunicorn(env_overrides: dict, workers: int = 2, extra_args=()):
    """Yield the base URL of a gunicorn serving the app with these settings."""
    with gunicorn_process(env_overrides, workers, extra_args) as (base, _proc):
        yield base


@contextlib.contextmanager
def gunicorn_process(env_overrides: dict, workers: int = 2, extra_args=()):
    """Yield (base URL, master Popen) of a gunicorn serving the app; `worker_pids` lists its workers."""
    port = free_port()
    env = {**os.environ, "SECRET_KEY": SECRET_KEY, **env_overrides}
    proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                             "--log-level", "warning", *extra_args, "wsgi:app"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def worker_pids(master_pid: int) -> list[int]:
    """The pids of a gunicorn master's workers (its child processes, Linux /proc)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


class Gateway:
    """A loopback SMS gateway that sends each Idempotency-Key once, as a real one would: `received`
    holds what it delivered, `requests` the key of every request; it can answer with errors."""

    def __init__(self):
        self.received, self.fail_with, self.lock, self.keys = [], [], threading.Lock(), set()
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                with outer.lock:
                    outer.requests.append(key)
                    status = outer.fail_with.pop(0) if outer.fail_with else 200
                    if status == 200 and key not in outer.keys:  # a repeated key is accepted, not sent again
                        outer.keys.add(key)
                        outer.received.append({**body, "auth": self.headers.get("Authorization"), "key": key})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "busy"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self):
        return sorted(m["to"] for m in self.received)

    @property
    def delivered(self) -> dict:
        """{Idempotency-Key: mobile} of what was delivered."""
        return {m["key"]: m["to"] for m in self.received}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
