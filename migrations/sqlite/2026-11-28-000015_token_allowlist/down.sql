ALTER TABLE tokens DROP COLUMN allowed_ips;
