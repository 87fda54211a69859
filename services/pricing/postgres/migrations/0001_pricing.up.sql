-- Pricing (services/pricing): price lists, vouchers and their
-- redemptions, quotes, add-on reservations. Records are the domain's JSON
-- (pricing.Rules, Voucher, Quote), normalized before they are written;
-- the columns beside them are what the statements that decide races
-- need.

-- The latest version of each event's price list. PutRules writes version
-- n+1 only over version n (UPDATE … WHERE version = n), version 1 only
-- where there is none (the primary key).
CREATE TABLE pricing_rules (
	event   text   PRIMARY KEY,
	version bigint NOT NULL,
	rules   jsonb  NOT NULL,
	CONSTRAINT pricing_rules_event_format CHECK (event ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
	CONSTRAINT pricing_rules_version_positive CHECK (version >= 1)
);

-- Vouchers. A redemption locks its voucher's row (SELECT … FOR UPDATE),
-- so the redemptions of one voucher are decided one at a time.
CREATE TABLE pricing_vouchers (
	code    text  PRIMARY KEY,
	voucher jsonb NOT NULL,
	CONSTRAINT pricing_vouchers_code_format CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{2,31}$')
);

-- One row per order that redeemed a voucher: the primary key makes
-- Redeem idempotent per order.
CREATE TABLE pricing_redemptions (
	code        text        NOT NULL REFERENCES pricing_vouchers (code),
	order_id    text        NOT NULL,
	account     text        NOT NULL,
	redeemed_at timestamptz NOT NULL,
	PRIMARY KEY (code, order_id)
);

CREATE INDEX pricing_redemptions_account ON pricing_redemptions (code, account);

-- Quotes are written once (the primary key) and never changed.
CREATE TABLE pricing_quotes (
	id         text        PRIMARY KEY,
	event      text        NOT NULL,
	account    text        NOT NULL,
	quote      jsonb       NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

-- Units of each add-on reserved, all orders together. A reservation adds
-- to it only where the sum stays within the capacity (an upsert whose
-- update has that condition, which the database checks on the locked row).
CREATE TABLE pricing_addon_stock (
	event    text    NOT NULL,
	addon    text    NOT NULL,
	reserved integer NOT NULL,
	PRIMARY KEY (event, addon),
	CONSTRAINT pricing_addon_stock_nonnegative CHECK (reserved >= 0)
);

-- Each order's reservation, {"<add-on>": units, …}: the primary key makes
-- ReserveAddOns idempotent per order.
CREATE TABLE pricing_addon_reservations (
	event    text  NOT NULL,
	order_id text  NOT NULL,
	items    jsonb NOT NULL,
	PRIMARY KEY (event, order_id)
);
