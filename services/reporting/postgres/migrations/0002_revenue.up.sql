-- The money of reports comes from order events (ticketing.order.paid and
-- ticketing.order.refunded), per event and hour: orders have no zones.
CREATE TABLE reporting_revenue (
	event_id        text        NOT NULL,
	hour            timestamptz NOT NULL,
	orders_paid     bigint      NOT NULL DEFAULT 0,
	orders_refunded bigint      NOT NULL DEFAULT 0,
	captured_cents  bigint      NOT NULL DEFAULT 0,
	gross_cents     bigint      NOT NULL DEFAULT 0,
	fees_cents      bigint      NOT NULL DEFAULT 0,
	tax_cents       bigint      NOT NULL DEFAULT 0,
	discount_cents  bigint      NOT NULL DEFAULT 0,
	refunded_cents  bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (event_id, hour)
);
CREATE INDEX reporting_revenue_hour ON reporting_revenue (hour);

-- The inventory's face values are no longer read. The columns stay while
-- binaries from before this migration may still run (a rolling deploy:
-- they write them); a later migration drops them.
COMMENT ON COLUMN reporting_hours.gross_cents IS 'unused since migration 2 (face value of tickets sold; revenue is in reporting_revenue)';
COMMENT ON COLUMN reporting_hours.refunded_cents IS 'unused since migration 2 (face value of cancelled sales; refunds are in reporting_revenue)';
