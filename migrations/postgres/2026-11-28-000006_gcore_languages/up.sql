-- Gcore's SDK accepts these languages only (de, en, ru, zh, az); "es" was accepted before.
UPDATE users SET lang = 'en' WHERE lang NOT IN ('en', 'de', 'ru', 'zh', 'az');
