DROP TABLE sweep_lease;
DROP INDEX notices_digest;
ALTER TABLE notices DROP COLUMN digest_key;
