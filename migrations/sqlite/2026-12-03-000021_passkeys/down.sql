DROP TABLE webauthn_used_challenges;
DROP TABLE passkeys;
