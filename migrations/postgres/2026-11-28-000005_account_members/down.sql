DROP TABLE account_events;
DROP TABLE password_setups;
ALTER TABLE users DROP COLUMN lang;
ALTER TABLE users DROP COLUMN phone;
