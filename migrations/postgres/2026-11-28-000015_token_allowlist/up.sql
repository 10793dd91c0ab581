-- A token's address allowlist (issue 13): comma-separated CIDRs; NULL = any address.
ALTER TABLE tokens ADD COLUMN allowed_ips TEXT;
