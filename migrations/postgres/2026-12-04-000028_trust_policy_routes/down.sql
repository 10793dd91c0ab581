ALTER TABLE trust_policies DROP COLUMN allowed_routes;
