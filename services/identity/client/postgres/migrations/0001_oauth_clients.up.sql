-- Partner clients of the OAuth 2.0 client credentials grant
-- (services/identity/client). Ids are compared and ordered by their bytes
-- (COLLATE "C"), as the other stores order them; secret_hashes holds the
-- SHA-256 of each current secret, never a secret. version is the
-- compare-and-set counter of Store.Update.
CREATE TABLE oauth_clients (
	id            text COLLATE "C" PRIMARY KEY,
	name          text        NOT NULL,
	scopes        text[]      NOT NULL,
	secret_hashes text[]      NOT NULL DEFAULT '{}',
	disabled      boolean     NOT NULL DEFAULT false,
	created_at    timestamptz NOT NULL,
	channel       text        NOT NULL DEFAULT 'partner',
	version       bigint      NOT NULL DEFAULT 1,
	CONSTRAINT oauth_clients_id_format CHECK (id ~ '^c_[A-Za-z0-9_-]{1,62}$'),
	CONSTRAINT oauth_clients_scopes_present CHECK (cardinality(scopes) >= 1),
	CONSTRAINT oauth_clients_secret_count CHECK (cardinality(secret_hashes) <= 2),
	CONSTRAINT oauth_clients_version_positive CHECK (version >= 1)
);
