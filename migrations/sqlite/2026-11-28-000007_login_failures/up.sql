-- Failed sign-in attempts per e-mail and per client address, shared by every instance on
-- this database. An attempt is counted before its password is checked (see login_limit.rs).
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY NOT NULL,
    count INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
