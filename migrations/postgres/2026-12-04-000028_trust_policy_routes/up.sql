-- A trust policy may limit the tokens it mints to allowed routes (issue 29 with issue 28).
ALTER TABLE trust_policies ADD COLUMN allowed_routes TEXT;
