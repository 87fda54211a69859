-- The account's language for the mail it gets (a BCP 47 tag, '' for the
-- platform's default).
ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT '';
