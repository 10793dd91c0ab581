-- Sign-in limiter keys become HMACs under the installation's secret key (issue 31): the old
-- rows hold what people typed into the e-mail field in plain text. They are only counts of
-- recent failures, so they are dropped rather than converted.
DELETE FROM login_failures;
