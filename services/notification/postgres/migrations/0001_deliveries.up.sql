-- Notification deliveries, by delivery key (notification.Key): begun
-- before the message goes out, done after. A done row is never written
-- back to begun.
CREATE TABLE notification_deliveries (
	key         text        PRIMARY KEY,
	done        boolean     NOT NULL DEFAULT false,
	begun_at    timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	CONSTRAINT notification_deliveries_key_format CHECK (key ~ '^[0-9a-f]{64}$')
);
