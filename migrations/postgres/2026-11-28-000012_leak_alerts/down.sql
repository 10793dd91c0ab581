ALTER TABLE accounts DROP COLUMN leak_response;
ALTER TABLE notices DROP COLUMN detail;
