-- SCIM 2.0 provisioning (issue 15).
-- The account's SCIM bearer token, as its SHA-256 only; one per account (a new one replaces it).
ALTER TABLE accounts ADD COLUMN scim_token_hash TEXT;
CREATE UNIQUE INDEX accounts_scim_token ON accounts (scim_token_hash) WHERE scim_token_hash IS NOT NULL;
-- SCIM's userName when the identity provider's differs from the e-mail, and its externalId.
ALTER TABLE users ADD COLUMN user_name TEXT;
ALTER TABLE users ADD COLUMN external_id TEXT;
-- Deprovisioned by the identity provider (active false): removed from the account like any
-- removed user, but still a SCIM resource, which the identity provider may reactivate.
ALTER TABLE users ADD COLUMN deactivated BOOLEAN NOT NULL DEFAULT 0;
