def test_healthz_is_liveness_and_readyz_checks_the_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok", "scheduler": "not_running"}  # none has run here


def test_readyz_reports_a_running_scheduler(app, client):
    from crm.campaigns.leases import Lease
    from crm.extensions import db
    with app.app_context():
        assert Lease(holder="sched-1", seconds=15).acquire()
        db.session.remove()
    assert client.get("/readyz").json == {"status": "ok", "database": "ok", "scheduler": "ok"}
