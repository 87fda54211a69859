-- Accounts: what users sign in with and may do (identity.Account), and the
-- single-use links mailed to them (identity.Link). Existing users get the
-- defaults: no password, no second factor, version 1.
ALTER TABLE users
	ADD COLUMN email_verified boolean     NOT NULL DEFAULT false,
	ADD COLUMN roles          text[]      NOT NULL DEFAULT '{}',
	-- PHC string of the argon2id hash; '' when the account has none.
	ADD COLUMN password       text        NOT NULL DEFAULT '',
	ADD COLUMN totp           jsonb       NOT NULL DEFAULT '{}',
	-- Hashes of the unused recovery codes.
	ADD COLUMN recovery       text[]      NOT NULL DEFAULT '{}',
	ADD COLUMN passkeys       jsonb       NOT NULL DEFAULT '[]',
	ADD COLUMN failures       integer     NOT NULL DEFAULT 0,
	ADD COLUMN failed_at      timestamptz,
	-- Account.Version: every update sets version + 1 where the row is
	-- still at the version the writer read.
	ADD COLUMN version        bigint      NOT NULL DEFAULT 1,
	ADD CONSTRAINT users_failures_nonnegative CHECK (failures >= 0);

-- Links hold the SHA-256 of the mailed secret, never the secret. A taken
-- link is deleted; an expired one stays until something purges it.
CREATE TABLE links (
	hash       text        PRIMARY KEY,
	purpose    text        NOT NULL,
	user_id    text        NOT NULL REFERENCES users (id),
	email      text        NOT NULL,
	expires_at timestamptz NOT NULL,
	CONSTRAINT links_hash_format CHECK (hash ~ '^[0-9a-f]{64}$')
);
