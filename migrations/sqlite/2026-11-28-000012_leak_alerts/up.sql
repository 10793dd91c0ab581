-- Leak alerts are notices too (kind 'leak'); detail says where the token was found.
ALTER TABLE notices ADD COLUMN detail TEXT;
