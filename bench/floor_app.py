"""The least a checkout could cost on this stack, for bench/checkout_load.py (its floor).

Flask under the same gunicorn, one psycopg connection per worker, no ORM, no validation,
no business rules: POST /api/v1/checkouts runs one transaction of the twelve statements
every member checkout needs at minimum (token, idempotency lock and check, member, items,
bill, lines, conditional balance update, ledger entry, lot, audit row, idempotency row).
The other paths of bench/paths_load.py have floors of the same kind: a quote (token, member,
items, points: four reads), a card scan (token, card, member, points, stored value) and a
top-up (token, idempotency lock and check, member lock, bonus tier, top-up row, both
stored-value balances, their two entries, audit row, idempotency row).
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
CREATE TABLE cards (code text PRIMARY KEY, member_id int);
INSERT INTO cards SELECT 'member-' || g, g FROM generate_series(1, {members}) g;
CREATE TABLE wallet (member_id int, kind text, balance int, PRIMARY KEY (member_id, kind));
INSERT INTO wallet SELECT g, k, 100000 FROM generate_series(1, {members}) g, (VALUES ('principal'), ('bonus')) v(k);
CREATE TABLE wallet_entries (id serial PRIMARY KEY, member_id int, kind text, amount int, topup_id int);
CREATE TABLE tiers (id serial PRIMARY KEY, min_amount int, bonus int);
INSERT INTO tiers (min_amount, bonus) VALUES (50000, 5000), (100000, 15000);
CREATE TABLE topups (id serial PRIMARY KEY, member_id int, amount int, bonus int, method text,
                     created_at timestamptz DEFAULT now());
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


@app.post("/api/v1/checkouts/quote")
def quote():
    body = request.get_json()
    member_id = body.get("member_id") or 1
    with connection().transaction(), connection().cursor() as cur:
        cur.execute("SELECT staff_id FROM tokens WHERE token_hash = %s", ("bench",)).fetchone()
        cur.execute("SELECT level FROM members WHERE id = %s", (member_id,)).fetchone()
        cur.execute("SELECT sku, member_price FROM items WHERE sku = ANY(%s)", (["SALMON", "TEA"],)).fetchall()
        balance = cur.execute("SELECT balance FROM accounts WHERE id = %s", (member_id,)).fetchone()[0]
    return jsonify(due="156.00", points_available=balance)


@app.post("/api/v1/cards/scan")
def scan():
    code = request.get_json()["code"]
    with connection().transaction(), connection().cursor() as cur:
        cur.execute("SELECT staff_id FROM tokens WHERE token_hash = %s", ("bench",)).fetchone()
        member_id = cur.execute("SELECT member_id FROM cards WHERE code = %s", (code,)).fetchone()[0]
        level = cur.execute("SELECT level FROM members WHERE id = %s", (member_id,)).fetchone()[0]
        points = cur.execute("SELECT balance FROM accounts WHERE id = %s", (member_id,)).fetchone()[0]
        stored = cur.execute("SELECT sum(balance) FROM wallet WHERE member_id = %s", (member_id,)).fetchone()[0]
    return jsonify(id=member_id, level=level, points_balance=points, wallet_balance=str(stored))


@app.post("/api/v1/members/<int:member_id>/wallet/top-ups")
def top_up(member_id):
    body = request.get_json()
    key = request.headers["Idempotency-Key"]
    with connection().transaction(), connection().cursor() as cur:
        cur.execute("SELECT staff_id FROM tokens WHERE token_hash = %s", ("bench",)).fetchone()
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
        cur.execute("SELECT id FROM idem WHERE key = %s", (key,)).fetchone()
        cur.execute("SELECT id FROM members WHERE id = %s FOR NO KEY UPDATE", (member_id,)).fetchone()
        tier = cur.execute("SELECT bonus FROM tiers WHERE min_amount <= 10000 ORDER BY min_amount DESC LIMIT 1"
                           ).fetchone()
        bonus = tier[0] if tier else 0
        topup_id = cur.execute("INSERT INTO topups (member_id, amount, bonus, method) VALUES (%s, 10000, %s, %s) "
                               "RETURNING id", (member_id, bonus, body["payment_method"])).fetchone()[0]
        cur.execute("UPDATE wallet SET balance = balance + CASE kind WHEN 'principal' THEN 10000 ELSE %s END "
                    "WHERE member_id = %s RETURNING kind, balance", (bonus, member_id)).fetchall()
        cur.executemany("INSERT INTO wallet_entries (member_id, kind, amount, topup_id) VALUES (%s, %s, %s, %s)",
                        [(member_id, "principal", 10000, topup_id), (member_id, "bonus", bonus, topup_id)])
        cur.execute("INSERT INTO audit (action, details) VALUES ('wallet.top_up', %s)", (json.dumps(body),))
        cur.execute("INSERT INTO idem (key, body) VALUES (%s, '{}')", (key,))
    return jsonify(id=topup_id, principal_added="100.00", bonus_added="0.00"), 201
