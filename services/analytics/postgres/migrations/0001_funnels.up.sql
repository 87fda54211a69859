-- Funnel states per event, and the next Kafka offset of every partition
-- consumed: written in one transaction per batch (exactly once).
CREATE TABLE analytics_offsets (
	kafka_topic     text    NOT NULL,
	kafka_partition integer NOT NULL,
	next_offset     bigint  NOT NULL CHECK (next_offset >= 0),
	PRIMARY KEY (kafka_topic, kafka_partition)
);

CREATE TABLE analytics_funnels (
	event_id   text        PRIMARY KEY,
	state      jsonb       NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
