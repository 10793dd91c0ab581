DROP TABLE token_exchanges;
DROP TABLE trust_policies;
DROP TABLE service_accounts;
