"""The least a checkout could cost on this stack, for bench/checkout_load.py (its floor).

Flask under the same gunicorn, one psycopg connection per worker, no ORM, no validation,
no business rules: POST /api/v1/checkouts runs one transaction of the twelve statements
every member checkout needs at minimum (token, idempotency lock and check, member, items,
bill, lines, conditional balance update, ledger entry, lot, audit row, idempotency row).
FLOOR_MODE=http answers without touching the database at all.
"""
import json
import os

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
MODE = os.environ.get("FLOOR_MODE", "txn")
MEMBERS = int(os.environ.get("FLOOR_MEMBERS", "10000"))
# .format(members=N) before running it
SCHEMA = """
CREATE TABLE tokens (id serial PRIMARY KEY, token_hash text UNIQUE, staff_id int);
INSERT INTO tokens (token_hash, staff_id) VALUES ('bench', 1);
CREATE TABLE idem (id serial PRIMARY KEY, key text UNIQUE, body text);
CREATE TABLE members (id int PRIMARY KEY, level text);
INSERT INTO members SELECT g, 'silver' FROM generate_series(1, {members}) g;
CREATE TABLE items (sku text PRIMARY KEY, list_price int, member_price int);
INSERT INTO items VALUES ('SALMON', 10800, 6800), ('TEA', 2000, NULL);
CREATE TABLE checkouts (id serial PRIMARY KEY, member_id int, total int, created_at timestamptz DEFAULT now());
CREATE TABLE lines (id serial PRIMARY KEY, checkout_id int, sku text, qty int);
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, {members}) g;
CREATE TABLE entries (id serial PRIMARY KEY, account_id int, points int, checkout_id int);
CREATE TABLE lots (id serial PRIMARY KEY, account_id int, points int);
CREATE TABLE audit (id serial PRIMARY KEY, action text, details text);
"""
_conn = None


def connection():
    global _conn
    if _conn is None:
        _conn = psycopg.connect(os.environ["FLOOR_DATABASE_URL"])
    return _conn


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/api/v1/checkouts")
def checkout():
    body = request.get_json()
    if MODE == "http":
        return jsonify(id=1, due="156.00"), 201
    key = request.headers["Idempotency-Key"]
    member_id = body.get("member_id") or hash(key) % MEMBERS + 1
    conn = connection()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT staff_id FROM tokens WHERE token_hash = %s", ("bench",)).fetchone()
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
        cur.execute("SELECT id FROM idem WHERE key = %s", (key,)).fetchone()
        cur.execute("SELECT level FROM members WHERE id = %s", (member_id,)).fetchone()
        cur.execute("SELECT sku, member_price FROM items WHERE sku = ANY(%s)", (["SALMON", "TEA"],)).fetchall()
        checkout_id = cur.execute("INSERT INTO checkouts (member_id, total) VALUES (%s, 15600) RETURNING id",
                                  (member_id,)).fetchone()[0]
        cur.executemany("INSERT INTO lines (checkout_id, sku, qty) VALUES (%s, %s, %s)",
                        [(checkout_id, "SALMON", 2), (checkout_id, "TEA", 1)])
        balance = cur.execute("UPDATE accounts SET balance = balance + 15 WHERE id = %s AND balance >= 0 "
                              "RETURNING balance", (member_id,)).fetchone()[0]
        cur.execute("INSERT INTO entries (account_id, points, checkout_id) VALUES (%s, 15, %s)",
                    (member_id, checkout_id))
        cur.execute("INSERT INTO lots (account_id, points) VALUES (%s, 15)", (member_id,))
        cur.execute("INSERT INTO audit (action, details) VALUES ('checkout.close', %s)", (json.dumps(body),))
        cur.execute("INSERT INTO idem (key, body) VALUES (%s, '{}')", (key,))
    return jsonify(id=checkout_id, due="156.00", points_balance=balance), 201
