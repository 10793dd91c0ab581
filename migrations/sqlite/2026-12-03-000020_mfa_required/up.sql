-- An account's policy that everyone who signs in with a password has a second factor
-- (issue 27); SSO people are exempt (their identity provider does it).
ALTER TABLE accounts ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT FALSE;
