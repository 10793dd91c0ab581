DROP INDEX tokens_expiring_live;
DROP INDEX tokens_live;
