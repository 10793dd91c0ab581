ALTER TABLE users DROP COLUMN jwt_generation;
