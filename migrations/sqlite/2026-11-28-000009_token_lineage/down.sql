DROP INDEX tokens_parent; ALTER TABLE tokens DROP COLUMN parent_id;
