-- Leak alerts are notices too (kind 'leak'); detail says where the token was found.
ALTER TABLE notices ADD COLUMN detail TEXT;
-- What the account does with a token reported leaked: 'revoke' (at once) or 'notify' (only tell).
ALTER TABLE accounts ADD COLUMN leak_response TEXT NOT NULL DEFAULT 'revoke';
