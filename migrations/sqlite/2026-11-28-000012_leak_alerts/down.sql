ALTER TABLE notices DROP COLUMN detail;
