-- Least privilege (issue 28): the routes a token is limited to (lines of "METHOD /pattern";
-- NULL: everything its role allows), and the account's policy that every new token have some.
ALTER TABLE tokens ADD COLUMN allowed_routes TEXT;
ALTER TABLE accounts ADD COLUMN routes_required BOOLEAN NOT NULL DEFAULT false;
