-- Nothing to undo: the old language is not known.
SELECT 1;
