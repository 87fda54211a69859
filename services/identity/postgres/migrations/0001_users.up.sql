-- Accounts. Emails are stored normalized (lower case, see
-- identity.NormalizeEmail); the unique index is on lower(email) all the
-- same, so that no writer bypassing the domain can create a duplicate.
CREATE TABLE users (
	id           text        PRIMARY KEY,
	email        text        NOT NULL,
	display_name text        NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL,
	CONSTRAINT users_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
	CONSTRAINT users_email_length CHECK (length(email) BETWEEN 3 AND 254)
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
