"""The API contract check: Schemathesis against /api/v1/openapi.json on a live gunicorn
serving a fresh PostgreSQL database with the demo data (`make contract`, run by CI).

Every check, every operation, the stateful phase on, a fixed seed and a bounded number of
examples per operation, so a run is repeatable and takes a few minutes. The settings that
are ours (which statuses a schema-valid request may still get, and why) live in
contract/schemathesis.toml. Exits non-zero on any failure; prints Schemathesis' summary.
"""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.servers import SECRET_KEY, flask_cli, gunicorn  # noqa: E402

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEED = os.environ.get("CONTRACT_SEED", "20261130")
EXAMPLES = os.environ.get("CONTRACT_EXAMPLES", "25")


def main() -> int:
    name = f"crm_contract_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY,
           # Searches and logins are rate limited for people; the fuzzer is not a person.
           "MEMBER_SEARCH_LIMIT": "", "LOGIN_FAILURE_LIMIT": "1000 per minute",
           "LOGIN_ADDRESS_FAILURE_LIMIT": "10000 per minute"}
    try:
        flask_cli(env, "db", "upgrade")
        flask_cli(env, "crm", "demo")
        with gunicorn(env, workers=2) as base:
            run_env = {**os.environ, "CONTRACT_BASE": base, "SCHEMATHESIS_HOOKS": "contract.hooks",
                       "PYTHONPATH": str(ROOT)}
            cmd = [str(Path(sys.executable).parent / "schemathesis"), "--config-file",
                   str(ROOT / "contract" / "schemathesis.toml"), "run", f"{base}/api/v1/openapi.json",
                   "--checks", "all", "--seed", SEED, "--max-examples", EXAMPLES,
                   "--phases", "examples,coverage,fuzzing,stateful", "--workers", "2",
                   "--no-color", "--request-timeout", "30",
                   "--max-failures", "200", "--generation-database", "none"]
            return subprocess.run(cmd, cwd=ROOT, env=run_env, timeout=1500).returncode
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
