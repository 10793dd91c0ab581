-- Single sign-on per account (issue 26), OpenID Connect: the issuer (its discovery document
-- and keys are fetched from it), our client id there, and the client secret, sealed
-- (AES-256-GCM under the installation's key: it must be sent to the issuer, so it can't be
-- hashed). `required`: the account's people sign in only through SSO (Administrators keep a
-- break-glass password sign-in, audited). `jit_role`: a person the provider vouches for but
-- the account doesn't know is added with this role at first sign-in (NULL: nobody is added).
CREATE TABLE sso_configs (
    account_id INTEGER PRIMARY KEY NOT NULL REFERENCES accounts(id),
    protocol TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed TEXT NOT NULL,
    required BOOLEAN NOT NULL DEFAULT FALSE,
    jit_role INTEGER,
    updated_at TIMESTAMP NOT NULL
);
