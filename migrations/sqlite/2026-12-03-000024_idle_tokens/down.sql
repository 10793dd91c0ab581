ALTER TABLE accounts DROP COLUMN max_idle_days;
