DROP TABLE notices;
ALTER TABLE users DROP COLUMN token_expiry_email;
