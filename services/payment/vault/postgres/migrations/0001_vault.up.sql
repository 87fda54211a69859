-- The card vault (services/payment/vault): ciphertext only. Data keys are
-- stored wrapped by a key-encryption key the database never sees; cards
-- and CVCs are sealed under data keys, with associated data naming the
-- token and the data key, so rows copied between records do not open.

CREATE TABLE vault_data_keys (
	-- COLLATE "C": Keys pages in byte order, as every store does.
	id         text        COLLATE "C" PRIMARY KEY,
	-- The KEK that wraps it: what Rewrap changes, what KEKs counts.
	kek        text        NOT NULL,
	wrapped    bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	-- WrappedKey.Version: every update sets version + 1 where the row is
	-- still at the version the writer read.
	version    bigint      NOT NULL DEFAULT 1,
	CONSTRAINT vault_data_keys_id_format CHECK (id ~ '^dek_[0-9a-f]{24}$'),
	CONSTRAINT vault_data_keys_kek_format CHECK (kek ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$'),
	CONSTRAINT vault_data_keys_wrapped_size CHECK (length(wrapped) = 60)
);

CREATE INDEX vault_data_keys_kek ON vault_data_keys (kek);

-- A card: its token (the public part) in columns, its number and expiry
-- sealed.
CREATE TABLE vault_cards (
	token_id    text        PRIMARY KEY,
	data_key    text        COLLATE "C" NOT NULL REFERENCES vault_data_keys (id),
	brand       text        NOT NULL,
	last4       text        NOT NULL,
	exp_month   smallint    NOT NULL,
	exp_year    smallint    NOT NULL,
	fingerprint text        NOT NULL,
	created_at  timestamptz NOT NULL,
	sealed      bytea       NOT NULL,
	CONSTRAINT vault_cards_token_format CHECK (token_id ~ '^pm_[0-9a-f]{32}$'),
	CONSTRAINT vault_cards_last4_format CHECK (last4 ~ '^[0-9]{4}$'),
	CONSTRAINT vault_cards_exp_month CHECK (exp_month BETWEEN 1 AND 12),
	CONSTRAINT vault_cards_sealed_size CHECK (length(sealed) BETWEEN 28 AND 512)
);

-- Cards by fingerprint: one card's tokens.
CREATE INDEX vault_cards_fingerprint ON vault_cards (fingerprint);

-- CVCs, apart from the cards: deleted after authorization, ignored past
-- expires_at and deleted by later writes.
CREATE TABLE vault_cvcs (
	token_id   text        PRIMARY KEY,
	data_key   text        COLLATE "C" NOT NULL REFERENCES vault_data_keys (id),
	sealed     bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	CONSTRAINT vault_cvcs_token_format CHECK (token_id ~ '^pm_[0-9a-f]{32}$'),
	CONSTRAINT vault_cvcs_sealed_size CHECK (length(sealed) BETWEEN 28 AND 512)
);

CREATE INDEX vault_cvcs_expires_at ON vault_cvcs (expires_at);

-- Values the vault checks at start (the fingerprint key's check value).
CREATE TABLE vault_meta (
	name  text PRIMARY KEY,
	value text NOT NULL
);
