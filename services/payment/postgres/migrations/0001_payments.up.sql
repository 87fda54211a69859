-- The payments ledger (payment.Ledger): one row per order's payment, its
-- ledger entries in their own table, both written in one transaction.

CREATE TABLE payments (
	-- COLLATE "C": List pages in byte order, as every store does.
	order_id   text        COLLATE "C" PRIMARY KEY,
	-- Copies of the record's event and account, for List's filter.
	event      text        NOT NULL DEFAULT '',
	account    text        NOT NULL DEFAULT '',
	-- payment.Payment as JSON, without its entries, version and times.
	record     jsonb       NOT NULL,
	-- Payment.Version: every update sets version + 1 where the row is
	-- still at the version the writer read.
	version    bigint      NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	CONSTRAINT payments_order_id_format CHECK (order_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$')
);

CREATE INDEX payments_event ON payments (event, order_id);

-- Money that moved, append-only. An entry's id is the gateway object's
-- (charge, refund, intent), unique within its payment.
CREATE TABLE ledger_entries (
	order_id text        COLLATE "C" NOT NULL REFERENCES payments (order_id),
	entry_id text        NOT NULL,
	-- Position in the payment's ledger, from 0.
	seq      integer     NOT NULL,
	kind     text        NOT NULL,
	amount   bigint      NOT NULL,
	currency text        NOT NULL,
	at       timestamptz NOT NULL,
	source   text        NOT NULL,
	PRIMARY KEY (order_id, entry_id),
	CONSTRAINT ledger_entries_seq_key UNIQUE (order_id, seq),
	CONSTRAINT ledger_entries_kind CHECK (kind IN ('capture', 'refund', 'void')),
	CONSTRAINT ledger_entries_amount_positive CHECK (amount > 0),
	CONSTRAINT ledger_entries_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
	CONSTRAINT ledger_entries_source CHECK (source IN ('return', 'webhook', 'sync', 'saga'))
);

-- At most one capture per payment, for every writer, the domain's or not.
CREATE UNIQUE INDEX ledger_entries_one_capture ON ledger_entries (order_id) WHERE kind = 'capture';

-- Entries by time: List's time range, the finance export.
CREATE INDEX ledger_entries_at ON ledger_entries (at, order_id);

-- Entries are never changed or removed.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'ledger entries are append-only' USING ERRCODE = 'integrity_constraint_violation',
		CONSTRAINT = 'ledger_entries_append_only';
END
$$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
	FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- Refunds never exceed the capture, for every writer: a refund locks its
-- payment's row (so refunds of one payment are judged one at a time)
-- and sums the entries.
CREATE FUNCTION ledger_entries_refunds_bounded() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	captured bigint;
	refunded bigint;
BEGIN
	PERFORM 1 FROM payments WHERE order_id = NEW.order_id FOR UPDATE;
	SELECT coalesce(sum(amount) FILTER (WHERE kind = 'capture'), 0), coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0)
		INTO captured, refunded FROM ledger_entries WHERE order_id = NEW.order_id;
	IF refunded > captured THEN
		RAISE EXCEPTION 'refunds exceed the capture of %', NEW.order_id USING ERRCODE = 'check_violation',
			CONSTRAINT = 'ledger_entries_refunds_bounded';
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER ledger_entries_refunds_bounded AFTER INSERT ON ledger_entries
	FOR EACH ROW WHEN (NEW.kind = 'refund') EXECUTE FUNCTION ledger_entries_refunds_bounded();

-- Gateway event ids seen (SeenEvent), kept at least the retention; later
-- calls delete older ones.
CREATE TABLE payment_events_seen (
	id      text        PRIMARY KEY,
	seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_events_seen_at ON payment_events_seen (seen_at);
