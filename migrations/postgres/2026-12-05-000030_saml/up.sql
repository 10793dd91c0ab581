-- SAML 2.0 single sign-on (issue 26). For a SAML account `issuer` holds the IdP's entity id,
-- `client_id` its HTTP-Redirect single sign-on URL and `client_secret_sealed` is empty (there
-- is no secret: the IdP signs); `idp_metadata` is the IdP's metadata XML as the Administrator
-- gave it (its signing certificates are read from it at every sign-in). `idp_initiated`:
-- responses that answer no request of ours are accepted (off unless the account turns it on).
ALTER TABLE sso_configs ADD COLUMN idp_metadata TEXT;
ALTER TABLE sso_configs ADD COLUMN idp_initiated BOOLEAN NOT NULL DEFAULT FALSE;
-- Each assertion is accepted once, on any instance: its (issuer, ID)'s SHA-256, kept until
-- the assertion could no longer be accepted anyway.
CREATE TABLE saml_used_assertions (
    assertion_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_used_assertions_expires ON saml_used_assertions (expires_at);
