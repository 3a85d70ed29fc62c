"""CSV imports as background jobs (crm/reports/import_jobs.py): the upload answers 202 at once,
a runner checks every row and then writes a chunk per transaction, the status endpoint and
the imports page show how far it got, and a job whose runner died is finished by the
scheduler without writing anything twice. The test app runs a job inside its upload request
(IMPORT_RUN_INLINE); one test here runs the real thread, and the 100,000-row test runs it
the way production does."""
import io
import re
import threading
import time

import pytest
from sqlalchemy import func, select, update

from crm.campaigns import jobs
from crm.extensions import db
from crm.reports import import_jobs, imports
from crm.reports.models import Check, ImportJob
from tests.conftest import SYSTEM, in_app
from tests.test_reports import post_csv
from tests.test_ui import text, ui_login

HEADER = "check_no,store_code,closed_at,amount,covers,segment\n"
CSV = {"Content-Type": "text/csv"}


def checks(n, amount="120.00", start=0, header=HEADER):
    return header + "".join(f"C{i:06d},BJ0{1 + i % 2},2026-03-{1 + i % 28:02d}T19:{i % 60:02d}:00+08:00,{amount},"
                            f"{1 + i % 6},walk_in\n" for i in range(start, start + n))


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def chunks_of_3(app):
    before = app.config["IMPORT_CHUNK_ROWS"]
    app.config["IMPORT_CHUNK_ROWS"] = 3
    yield
    app.config["IMPORT_CHUNK_ROWS"] = before


@pytest.fixture
def in_background(app):
    """Uploads start a real thread, as in production."""
    app.config["IMPORT_RUN_INLINE"] = False
    yield
    app.config["IMPORT_RUN_INLINE"] = True


def stored(app):
    """{check_no: (id, amount)} of every imported check."""
    with app.app_context():
        return {no: (i, amount) for i, no, amount in db.session.execute(select(Check.id, Check.check_no, Check.amount))}


def wait_for(api, job, seconds=120, every=0.05):
    """Poll the status endpoint until the job has finished (the runner is another thread)."""
    deadline = time.monotonic() + seconds
    while True:
        status = api.get(job["status_url"]).json
        if status["status"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(every)
    for thread in threading.enumerate():  # the runner has committed; let it close its session too
        if thread.name == f"import-job-{job['id']}":
            thread.join(10)
    return status


def test_an_upload_becomes_a_job_whose_progress_moves_a_chunk_at_a_time(app, manager, stores, chunks_of_3,
                                                                        monkeypatch):
    saved = []
    real_save = import_jobs._save
    monkeypatch.setattr(import_jobs, "_save", lambda job_id, runner, **values: (
        saved.append({k: values[k] for k in ("checked", "done", "imported") if k in values}),
        real_save(job_id, runner, **values))[1])
    r = manager.post("/api/v1/imports/checks", data=checks(10).encode(), headers=CSV)
    assert r.status_code == 202, r.json
    assert r.headers["Location"] == r.json["status_url"] == f"/api/v1/imports/{r.json['id']}"
    job = manager.get(r.json["status_url"]).json
    assert {k: job[k] for k in ("kind", "status", "phase", "total", "checked", "done", "imported", "updated",
                                "skipped", "error_count", "errors", "failure")} == {
        "kind": "checks", "status": "done", "phase": "writing", "total": 10, "checked": 10, "done": 10,
        "imported": 10, "updated": 0, "skipped": 0, "error_count": 0, "errors": [], "failure": None}
    assert job["started_at"] and job["finished_at"]
    # Progress is committed after every chunk of 3: first the check, then the writing.
    assert [s["checked"] for s in saved if "checked" in s] == [3, 6, 9, 10]
    assert [(s["done"], s["imported"]) for s in saved if "done" in s] == [(3, 3), (6, 6), (9, 9), (10, 10)]
    assert len(stored(app)) == 10
    with app.app_context():
        assert db.session.scalar(select(ImportJob.content)) is None  # the file goes once the job is done


def test_a_bad_row_in_the_last_chunk_still_imports_nothing(app, manager, stores, chunks_of_3):
    bad = "C900000,NOPE,2026-03-01T19:00:00+08:00,1.00,1,walk_in\n"
    body = checks(8) + bad + checks(1, header="")  # lines 2-9 good, 10 an unknown store, 11 C000000 again
    job = post_csv(manager, "/api/v1/imports/checks", body).json
    assert (job["status"], job["failure"], job["imported"], job["done"], job["skipped"]) == (
        "failed", "bad_rows", 0, 0, 10)
    assert [e["line"] for e in job["errors"]] == [10, 11] and job["error_count"] == 2
    assert "NOPE" in job["errors"][0]["message"] and "appears twice" in job["errors"][1]["message"]
    assert stored(app) == {}
    job = post_csv(manager, "/api/v1/imports/checks", body, skip_bad_rows="true").json
    assert (job["status"], job["imported"], job["updated"], job["skipped"], job["error_count"]) == (
        "done", 8, 0, 2, 2)
    assert [e["line"] for e in job["errors"]] == [10, 11]
    assert sorted(stored(app)) == [f"C{i:06d}" for i in range(8)]


def test_reimporting_a_file_updates_each_row_in_place(app, manager, stores, chunks_of_3):
    assert post_csv(manager, "/api/v1/imports/checks", checks(7)).json["imported"] == 7
    before = stored(app)
    job = post_csv(manager, "/api/v1/imports/checks", checks(7, amount="99.50")).json
    assert (job["status"], job["imported"], job["updated"]) == ("done", 0, 7)
    after = stored(app)
    assert {no: i for no, (i, _a) in after.items()} == {no: i for no, (i, _a) in before.items()}  # same rows
    assert {a for _i, a in after.values()} == {9950}


class Killed(BaseException):
    """The worker process dying mid-import: no `except Exception` gets to run."""


@pytest.mark.parametrize("dies_in", ["check_chunk", "write_chunk"])
def test_a_job_whose_runner_died_is_finished_by_the_scheduler_once_its_lease_lapses(
        app, stores, chunks_of_3, clock, monkeypatch, dies_in):
    job_id = in_app(app, lambda: import_jobs.create(SYSTEM, "checks", checks(10)).id)
    real, calls = getattr(imports, dies_in), []

    def third_chunk_kills(*args):
        calls.append(1)
        if len(calls) == 3:
            raise Killed()
        return real(*args)
    monkeypatch.setattr(imports, dies_in, third_chunk_kills)
    with app.app_context():
        with pytest.raises(Killed):
            import_jobs.run_job(job_id)
        db.session.remove()
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == "running" and job.done == (6 if dies_in == "write_chunk" else 0)
        jobs.resume_imports()  # the dead runner's lease has not lapsed yet: nobody takes the job
        assert db.session.get(ImportJob, job_id).done == job.done
        assert len(stored(app)) == job.done  # two committed chunks, the third rolled back
    clock.advance(seconds=app.config["IMPORT_LEASE_SECONDS"] + 1)
    with app.app_context():
        jobs.resume_imports()
        job = db.session.get(ImportJob, job_id)
        assert (job.status, job.done, job.attempts) == ("done", 10, 2)
        assert (job.imported + job.updated, job.skipped) == (10, 0)
    assert sorted(stored(app)) == [f"C{i:06d}" for i in range(10)]  # each once


def test_the_scheduler_also_runs_a_job_that_never_started(app, stores):
    job_id = in_app(app, lambda: import_jobs.create(SYSTEM, "checks", checks(4)).id)  # its thread never ran
    with app.app_context():
        jobs.resume_imports()
        assert (db.session.get(ImportJob, job_id).status, len(stored(app))) == ("done", 4)


def test_two_runners_never_hold_the_same_job(app, stores, clock):
    job_id = in_app(app, lambda: import_jobs.create(SYSTEM, "checks", checks(3)).id)
    start, won = threading.Barrier(4), []

    def claim(name):
        with app.app_context():
            try:
                start.wait()
                won.append((import_jobs.claim(job_id, name), name))
            finally:
                db.session.remove()
    threads = [threading.Thread(target=claim, args=(f"runner-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(w for w, _name in won) == [False, False, False, True]
    holder = next(name for w, name in won if w)
    with app.app_context():
        with pytest.raises(import_jobs.LostLease):  # a loser cannot write progress
            import_jobs._save(job_id, "runner-x", done=1)
        assert not import_jobs.claim(job_id, "runner-x")
        clock.advance(seconds=app.config["IMPORT_LEASE_SECONDS"] + 1)
        assert import_jobs.claim(job_id, "runner-x")  # the holder's lease lapsed: taken over
        with pytest.raises(import_jobs.LostLease):  # and the old holder's next chunk is rolled back
            import_jobs._save(job_id, holder, done=1)
        assert db.session.get(ImportJob, job_id).runner == "runner-x"
        db.session.remove()


def test_the_upload_answers_before_the_import_and_a_thread_of_the_web_process_finishes_it(
        app, manager, stores, in_background, monkeypatch):
    go = threading.Event()
    real_run = import_jobs.run_job
    monkeypatch.setattr(import_jobs, "run_job", lambda job_id, runner=None: (go.wait(30), real_run(job_id, runner))[1])
    r = manager.post("/api/v1/imports/checks", data=checks(5).encode(), headers=CSV)
    assert r.status_code == 202 and r.json["status"] == "queued" and r.json["total"] == 5
    assert stored(app) == {}
    go.set()  # the runner thread may go on now
    job = wait_for(manager, r.json)
    assert (job["status"], job["imported"]) == ("done", 5)
    assert len(stored(app)) == 5


def test_the_status_is_for_the_roles_that_import(app, client, login_api, manager, stores):
    job_id = post_csv(manager, "/api/v1/imports/checks", checks(2)).json["id"]
    for role in ("manager", "admin"):
        assert login_api(role).get(f"/api/v1/imports/{job_id}").json["imported"] == 2
    for role in ("cashier", "front_desk", "marketing"):
        assert login_api(role).get(f"/api/v1/imports/{job_id}").status_code == 403
    assert client.get(f"/api/v1/imports/{job_id}").status_code == 401
    missing = manager.get(f"/api/v1/imports/{job_id + 1}")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "import_not_found"


def test_imports_take_bodies_past_the_global_limit_up_to_their_own(app, manager, stores, desk):
    big = (HEADER + "x" * (6 * 1024 * 1024)).encode()  # over the 5 MB every other route allows
    r = manager.post("/api/v1/imports/checks", data=big.replace(b"closed_at,", b""), headers=CSV)
    assert r.status_code == 422 and r.json["error"]["code"] == "missing_columns"  # read, then judged
    other = desk.post("/api/v1/members", data=b'{"name": "' + b"x" * (6 * 1024 * 1024) + b'"}',
                      headers={"Content-Type": "application/json"})
    assert other.status_code == 413
    app.config["IMPORT_MAX_BYTES"], before = 1000, app.config["IMPORT_MAX_BYTES"]
    try:
        r = manager.post("/api/v1/imports/checks", data=checks(30).encode(), headers=CSV)
        assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"
    finally:
        app.config["IMPORT_MAX_BYTES"] = before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_the_imports_page_takes_files_past_the_global_limit_from_managers_only(app, staff, stores):
    big = (HEADER.replace("closed_at,", "") + "x" * (6 * 1024 * 1024)).encode()
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/reports/imports")
    r = ui.post("/reports/imports", {"kind": "checks", "file": (io.BytesIO(big), "pos.csv")},
                content_type="multipart/form-data")
    assert r.status_code == 422 and '<small class="error">The header row lacks: closed_at.' in text(r)
    cashier = ui_login(app, staff["cashier"], lang="en")
    r = cashier.post("/reports/imports", {"kind": "checks", "file": (io.BytesIO(big), "pos.csv")},
                     content_type="multipart/form-data")
    assert r.status_code == 413  # the larger limit is only for those who may import


def test_the_imports_page_shows_each_job_with_a_progress_bar(app, staff, stores):
    ui = ui_login(app, staff["manager"], lang="en")
    job_id = in_app(app, lambda: import_jobs.create(SYSTEM, "checks", checks(4), filename="pos.csv").id)
    page = text(ui.get("/reports/imports"))
    assert '<progress value="0" max="8"' in page and "Waiting" in page and "4 rows, waiting to start." in page
    assert f'data-progress-url="/reports/imports/{job_id}/progress"' in page and "pos.csv" in page
    assert all('src="/static/' in tag for tag in re.findall(r"<script[^>]*>", page))  # CSP: no inline script
    assert ui.get("/static/imports.js").status_code == 200
    in_app(app, lambda: db.session.execute(update(ImportJob).values(status="running", phase="writing", checked=4,
                                                                     done=2, imported=2)))
    assert ui.get(f"/reports/imports/{job_id}/progress").json == {
        "status": "running", "status_label": "Running", "value": 6, "max": 8,
        "summary": "2 of 4 rows: 2 new, 0 updated, 0 skipped."}
    page = text(ui.get(f"/reports/imports/{job_id}"))
    assert '<progress value="6" max="8"' in page and "data-reload-when-finished" in page
    in_app(app, lambda: db.session.execute(update(ImportJob).values(status="queued", phase="checking", checked=0,
                                                                     done=0, imported=0)))
    in_app(app, import_jobs.run_job, job_id)
    page = text(ui.get(f"/reports/imports/{job_id}"))
    assert '<progress value="8" max="8"' in page and "4 new rows, 0 updated, 0 skipped." in page
    assert "data-progress-url" not in page  # nothing left to refresh


def test_100000_checks_import_and_reimport_through_the_api_in_the_background(app, backend, manager, stores,
                                                                            in_background):
    if backend != "postgresql":
        pytest.skip("the 100,000-row run is made once, on PostgreSQL (the database production uses)")
    body = checks(100_000).encode()
    assert len(body) > 5 * 1024 * 1024  # past the limit of every other route
    for amount, imported, updated in (("120.00", 100_000, 0), ("130.00", 0, 100_000)):
        r = manager.post("/api/v1/imports/checks", data=checks(100_000, amount=amount).encode(), headers=CSV)
        assert r.status_code == 202 and r.json["total"] == 100_000
        job = wait_for(manager, r.json, seconds=600, every=0.5)
        assert (job["status"], job["imported"], job["updated"], job["skipped"], job["done"]) == (
            "done", imported, updated, 0, 100_000)
    with app.app_context():
        assert db.session.scalar(select(func.count(func.distinct(Check.check_no)))) == 100_000
        assert db.session.scalar(select(func.count()).select_from(Check)) == 100_000
        assert set(db.session.scalars(select(Check.amount).distinct())) == {13000}


def test_a_field_past_the_csv_limit_is_a_422_naming_its_line(app, manager, stores):
    raw = checks(2) + "C9," + "x" * 200_000 + ",2026-11-01 12:00,10.00,2,walk_in\n"
    r = manager.post("/api/v1/imports/checks", data=raw.encode(), headers=CSV)
    assert r.status_code == 422
    assert r.json["error"]["code"] == "invalid_csv" and r.json["error"]["details"]["line"] == 4
