#!/usr/bin/env python3
"""Loads the scale benchmark's data into a migrated apitokens database (scripts/scale).

Account 1 ("Big", made by `apitokens user add` beforehand) gets 50 active and 5,000 deleted
tokens; accounts 2..N get one Administrator each and the rest of the ROWS tokens: about 59 %
deleted, 39 % expired, the rest active, of which SWEEP_DUE expire in 3 days (created 30 days
ago, so their 7-day notice is due: one digest for each of SWEEP_DUE people). Every secret is
derived from the token's id, so the 10,000 valid tokens for the cold check are written to
TOKENS_FILE as `<id>_<secret>`.

    scale_data.py sqlite PATH | postgres URL   (env: ROWS, ACCOUNTS, SWEEP_DUE, TOKENS_FILE)
"""
import csv
import hashlib
import io
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta

ROWS = int(os.environ.get("ROWS", "1000000"))
ACCOUNTS = int(os.environ.get("ACCOUNTS", "10000"))
SWEEP_DUE = int(os.environ.get("SWEEP_DUE", "2000"))
TOKENS_FILE = os.environ.get("TOKENS_FILE", "tokens.txt")
COLD = 10000

backend, target = sys.argv[1], sys.argv[2]
now = datetime.utcnow().replace(microsecond=0)
fmt = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else None
rng = random.Random(42)


def secret(token_id):
    return hashlib.sha256(b"apitokens scale %d" % token_id).hexdigest()


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


accounts = [(a, "Scale %d" % a, fmt(now - timedelta(days=400))) for a in range(2, ACCOUNTS + 1)]
# User ids: the Big account's admin is 1; account a's admin is user a.
users = [(a, a, "admin%d@scale.test" % a, "Admin %d" % a, 1, "password", fmt(now - timedelta(days=400)))
         for a in range(2, ACCOUNTS + 1)]

tokens = []
valid = []
next_id = 1


def token(account, issuer, created, expires, deleted):
    global next_id
    tid = next_id
    next_id += 1
    tokens.append((tid, account, issuer, "t%d" % tid, 2, sha(secret(tid)), fmt(created), fmt(expires), fmt(deleted)))
    return tid


# The Big account: 5,000 deleted, then 50 active (newest).
for i in range(5000):
    c = now - timedelta(days=300, minutes=i)
    token(1, 1, c, None, c + timedelta(days=1))
for i in range(50):
    valid.append(token(1, 1, now - timedelta(days=10, minutes=i), None, None))
# Sweep-due tokens: one per account, expiring in 3 days, created 30 days ago.
for a in range(2, 2 + SWEEP_DUE):
    token(a, a, now - timedelta(days=30), now + timedelta(days=3), None)
rest = ROWS - len(tokens)
for i in range(rest):
    a = 2 + (i % (ACCOUNTS - 1))
    r = rng.random()
    c = now - timedelta(days=rng.randint(8, 700))
    if r < 0.594:
        token(a, a, c, None, c + timedelta(days=rng.randint(1, 5)))
    elif r < 0.986:
        token(a, a, c, c + timedelta(days=rng.randint(1, 5)), None)
    else:
        tid = token(a, a, c, None, None)
        if len(valid) < COLD:
            valid.append(tid)

with open(TOKENS_FILE, "w") as f:
    for tid in valid[:COLD]:
        f.write("%d_%s\n" % (tid, secret(tid)))

started = time.time()
cols_t = "(id, account_id, issuer_id, name, role, secret_hash, created_at, expires_at, deleted_at)"
if backend == "sqlite":
    import sqlite3
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode=WAL")
    with db:
        db.executemany("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)", accounts)
        db.executemany("INSERT INTO users (id, account_id, email, name, role, auth_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", users)
        db.executemany("INSERT INTO tokens " + cols_t + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tokens)
    db.execute("ANALYZE")
    db.close()
else:
    def copy(table, cols, rows):
        buf = io.StringIO()
        w = csv.writer(buf)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
        subprocess.run(["psql", "-q", target, "-c", "\\copy %s %s FROM STDIN WITH (FORMAT csv, NULL '')" % (table, cols)],
                       input=buf.getvalue().encode(), check=True)
    copy("accounts", "(id, name, created_at)", accounts)
    copy("users", "(id, account_id, email, name, role, auth_type, created_at)", users)
    copy("tokens", cols_t, tokens)
    subprocess.run(["psql", "-q", target, "-c",
                    "SELECT setval(pg_get_serial_sequence('accounts','id'), (SELECT max(id) FROM accounts));"
                    "SELECT setval(pg_get_serial_sequence('users','id'), (SELECT max(id) FROM users));"
                    "SELECT setval(pg_get_serial_sequence('tokens','id'), (SELECT max(id) FROM tokens));"
                    "ANALYZE;"], check=True, stdout=subprocess.DEVNULL)
print("%d tokens, %d accounts loaded in %.1f s" % (len(tokens), ACCOUNTS, time.time() - started))
