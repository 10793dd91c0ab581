DROP TABLE used_refresh_tokens;
