def test_healthz_is_liveness_and_readyz_checks_the_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok"}
