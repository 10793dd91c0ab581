ALTER TABLE users DROP COLUMN deactivated;
ALTER TABLE users DROP COLUMN external_id;
ALTER TABLE users DROP COLUMN user_name;
DROP INDEX accounts_scim_token;
ALTER TABLE accounts DROP COLUMN scim_token_hash;
