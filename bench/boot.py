"""How fast a worker starts: imports, create_app, and a gunicorn worker's first answer.

    make bench-boot                    # = .venv/bin/python bench/boot.py
    .venv/bin/python bench/boot.py --repeat 9

Prints, as medians over --repeat fresh processes (and the slowest):
- `python -c "import wsgi"`: a whole process that imports everything and builds the app;
- the imports alone (create_app the first time minus the second time in the same process)
  and create_app itself (the second call: nothing left to import);
- gunicorn with gunicorn.conf.py (preload, 1 worker): start to the first /healthz answer, and
  a SIGKILLed worker to the first answer of its replacement; then the same without preload
  (an empty config: each worker imports and builds the app itself).
The database is an empty SQLite file: /healthz only needs to reach it.
"""
import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PROBE = """
import time
t0 = time.perf_counter()
from crm import create_app
app = create_app()
t1 = time.perf_counter()
create_app()
t2 = time.perf_counter()
print((t1 - t0) - (t2 - t1), t2 - t1)
"""


def _env(tmp):
    return {**os.environ, "SECRET_KEY": secrets.token_urlsafe(48), "CRM_ENV": "production",
            "DATABASE_URL": f"sqlite:///{tmp}/boot.sqlite3", "RATELIMIT_STORAGE_URI": "memory://",
            "LOG_LEVEL": "warning", "BOOT_TMP": str(tmp)}


def _wait_ok(url, deadline_s=60.0):
    end = time.perf_counter() + deadline_s
    while time.perf_counter() < end:
        try:
            if requests.get(url, timeout=deadline_s).status_code == 200:
                return time.perf_counter()
        except requests.ConnectionError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer")


def _worker_pids(master_pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master_pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def gunicorn_figures(env, preload, repeat):
    from tests.servers import free_port  # noqa: E402 - ROOT is on sys.path by then
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    # gunicorn reads ./gunicorn.conf.py by default: the comparison names an empty config instead
    config = "gunicorn.conf.py" if preload else str(Path(env["BOOT_TMP"]) / "empty.conf.py")
    args = [str(BIN / "gunicorn"), "-c", config, "--workers", "1", "--log-level", "warning"]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*args, "--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cold = _wait_ok(url) - t0
        replacements = []
        for _ in range(repeat):
            (pid,) = _worker_pids(proc.pid)
            t_kill = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            # the listening socket stays with the master: this request waits for the new worker
            replacements.append(_wait_ok(url) - t_kill)
            time.sleep(0.2)
        return cold, replacements
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(tmp)
        (Path(tmp) / "empty.conf.py").write_text("")
        whole, imports, build = [], [], []
        for _ in range(opts.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, check=True)
            whole.append(time.perf_counter() - t0)
            out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout
            i, b = (float(x) for x in out.split()[-2:])
            imports.append(i)
            build.append(b)
        rows = [("python -c 'import wsgi' (whole process)", whole),
                ("imports (first create_app minus second)", imports),
                ("create_app (nothing left to import)", build)]
        for preload in (True, False):
            cold, replaced = gunicorn_figures(env, preload, opts.repeat)
            label = "gunicorn.conf.py (preload)" if preload else "no preload"
            rows.append((f"{label}: start to first /healthz", [cold]))
            rows.append((f"{label}: killed worker to replacement's answer", replaced))
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  median s   max s   (n)")
    for label, values in rows:
        print(f"{label:{width}}  {statistics.median(values):8.3f}  {max(values):6.3f}   ({len(values)})")
    load = re.sub(r"\s+", " ", Path("/proc/loadavg").read_text().strip()) if Path("/proc/loadavg").exists() else "?"
    print(f"cores: {os.cpu_count()}, load average: {load}")


if __name__ == "__main__":
    main()
