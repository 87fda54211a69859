-- Per Kafka partition: the offset of the next record to apply and the ids
-- of the last events applied, changed in the transaction that changes the
-- aggregates. next_offset -1: a row created to be locked, nothing applied.
CREATE TABLE reporting_cursors (
	topic       text     NOT NULL,
	partition   integer  NOT NULL,
	next_offset bigint   NOT NULL,
	recent_ids  text[]   NOT NULL DEFAULT '{}',
	PRIMARY KEY (topic, partition)
);

CREATE TABLE reporting_hours (
	event_id       text        NOT NULL,
	zone           text        NOT NULL,
	hour           timestamptz NOT NULL,
	held           bigint      NOT NULL DEFAULT 0,
	released       bigint      NOT NULL DEFAULT 0,
	expired        bigint      NOT NULL DEFAULT 0,
	sold           bigint      NOT NULL DEFAULT 0,
	cancelled      bigint      NOT NULL DEFAULT 0,
	gross_cents    bigint      NOT NULL DEFAULT 0,
	refunded_cents bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (event_id, zone, hour)
);
CREATE INDEX reporting_hours_hour ON reporting_hours (hour);

CREATE TABLE reporting_levels (
	event_id text   NOT NULL,
	zone     text   NOT NULL,
	held     bigint NOT NULL DEFAULT 0,
	sold     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (event_id, zone)
);

CREATE TABLE reporting_events (
	event_id     text        PRIMARY KEY,
	organizer_id text        NOT NULL DEFAULT '',
	currency     text        NOT NULL DEFAULT '',
	capacity     integer     NOT NULL DEFAULT 0,
	on_sale_at   timestamptz,
	last_at      timestamptz NOT NULL
);
