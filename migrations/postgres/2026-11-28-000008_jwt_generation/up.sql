-- A user's JWTs carry the generation they were issued in; raising it (sign out everywhere,
-- a role change, removal) ends every JWT issued before, at the gateway too.
ALTER TABLE users ADD COLUMN jwt_generation INTEGER NOT NULL DEFAULT 0;
