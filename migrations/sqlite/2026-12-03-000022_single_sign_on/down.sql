DROP TABLE sso_configs;
