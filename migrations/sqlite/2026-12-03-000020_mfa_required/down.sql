ALTER TABLE accounts DROP COLUMN mfa_required;
