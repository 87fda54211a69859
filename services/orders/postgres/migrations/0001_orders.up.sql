-- Orders (orders.Order). The record is the whole order as JSON; the other
-- columns are what the store looks orders up by or checks. Version is
-- Order.Version: every write sets version + 1 where the row is still at
-- the version its writer read.
CREATE TABLE orders (
	id          text        PRIMARY KEY,
	account     text        NOT NULL,
	event       text        NOT NULL,
	state       text        NOT NULL,
	-- When the saga acts on the order next; NULL when nothing is due.
	next_at     timestamptz,
	created     timestamptz NOT NULL,
	record      jsonb       NOT NULL,
	version     bigint      NOT NULL,
	-- The creating request's idempotency key and the digest of its body.
	-- A key names its order until the store's IdempotencyTTL has passed
	-- since the order was created (at least 24h); a request with the key
	-- after that clears it here (the record keeps it) and makes a new
	-- order.
	idem_key    text,
	fingerprint text        NOT NULL DEFAULT '',
	CONSTRAINT orders_version_positive CHECK (version > 0)
);

CREATE UNIQUE INDEX orders_idem_key ON orders (idem_key) WHERE idem_key IS NOT NULL;
-- ByAccount: newest first, the id breaking ties.
CREATE INDEX orders_account_created ON orders (account, created, id);
-- Due: only orders with something due are in it.
CREATE INDEX orders_next_at ON orders (next_at, id) WHERE next_at IS NOT NULL;

-- The claims of orders on their holds: a row exists while its order
-- counts against the purchase limit (orders.State.Counts), so that no
-- two such orders share a hold.
CREATE TABLE order_holds (
	hold_id  text PRIMARY KEY,
	order_id text NOT NULL
);

-- The tickets of each account's orders for an event that count against
-- the purchase limit.
CREATE TABLE purchase_counts (
	account text   NOT NULL,
	event   text   NOT NULL,
	tickets bigint NOT NULL,
	PRIMARY KEY (account, event),
	CONSTRAINT purchase_counts_tickets_check CHECK (tickets >= 0)
);

-- The transactional outbox (the shape internal/outbox/pgrelay relays):
-- the events of the orders' transitions, written in the order's
-- transaction, deleted once published to EVENTS. seq orders them: the
-- entries of one transaction share created, and ids are random.
CREATE TABLE order_outbox (
	seq     bigint      GENERATED ALWAYS AS IDENTITY,
	id      text        PRIMARY KEY,
	subject text        NOT NULL,
	headers jsonb       NOT NULL,
	body    bytea       NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_outbox_seq ON order_outbox (seq);

-- orders_refuse fails the statement that calls it with a check violation
-- naming what refused (the store maps the name to an error kind), so that
-- a write stops and rolls back where a condition failed: a create that
-- would pass the purchase limit.
CREATE FUNCTION orders_refuse(what text, detail text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	RAISE EXCEPTION 'refused: %', what USING ERRCODE = 'check_violation', CONSTRAINT = what, DETAIL = detail;
END
$$;
