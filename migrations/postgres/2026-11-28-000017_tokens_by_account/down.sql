DROP INDEX tokens_account_id;
