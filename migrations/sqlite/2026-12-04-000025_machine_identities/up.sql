-- Service accounts and workload identity federation (issue 29).
-- A service account is a row of users with auth_type 'service' (no e-mail it can receive, no
-- password, no sign-in), so tokens, roles, the gateway and removal treat it as an issuer
-- like any; this table holds what only a service account has.
CREATE TABLE service_accounts (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    description TEXT NOT NULL DEFAULT '',
    created_by INTEGER REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX service_accounts_account ON service_accounts (account_id);

-- Which OIDC issuers' JWTs (CI jobs) may be exchanged for a short-lived token of a service
-- account, and under which conditions on their claims.
CREATE TABLE trust_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    issuer TEXT NOT NULL,
    audience TEXT NOT NULL,
    conditions TEXT NOT NULL,
    service_account_id INTEGER NOT NULL REFERENCES users(id),
    role INTEGER NOT NULL,
    lifetime_seconds INTEGER NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX trust_policies_issuer ON trust_policies (issuer);
CREATE INDEX trust_policies_account ON trust_policies (account_id);

-- Each exchanged JWT, by issuer and jti: accepted once across every instance (the primary
-- key), kept until both it and the token it became have expired; the sweep deletes the token
-- when it expires (ended marks that done).
CREATE TABLE token_exchanges (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    policy_id INTEGER,
    expires_at TIMESTAMP NOT NULL,
    keep_until TIMESTAMP NOT NULL,
    ended BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX token_exchanges_due ON token_exchanges (expires_at) WHERE NOT ended;
CREATE INDEX token_exchanges_keep ON token_exchanges (keep_until);
