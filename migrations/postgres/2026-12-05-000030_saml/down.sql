DROP TABLE saml_used_assertions;
ALTER TABLE sso_configs DROP COLUMN idp_initiated;
ALTER TABLE sso_configs DROP COLUMN idp_metadata;
