ALTER TABLE tokens DROP COLUMN allowed_routes;
ALTER TABLE accounts DROP COLUMN routes_required;
