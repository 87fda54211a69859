-- The audit log: one hash chain per Kafka (topic, partition). Rows are only
-- ever inserted; pos is the insertion order, which Verify reads in.
CREATE TABLE audit_entries (
	pos             bigint GENERATED ALWAYS AS IDENTITY,
	kafka_topic     text        NOT NULL,
	kafka_partition integer     NOT NULL,
	seq             bigint      NOT NULL CHECK (seq > 0),
	kafka_offset    bigint      NOT NULL CHECK (kafka_offset >= 0),
	event_id        text        NOT NULL,
	event_type      text        NOT NULL,
	event_time      timestamptz NOT NULL,
	body            bytea       NOT NULL,
	prev_hash       bytea       NOT NULL,
	hash            bytea       NOT NULL,
	recorded_at     timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT audit_entries_pkey PRIMARY KEY (kafka_topic, kafka_partition, seq),
	CONSTRAINT audit_entries_offset_key UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

CREATE UNIQUE INDEX audit_entries_pos_key ON audit_entries (pos);
CREATE UNIQUE INDEX audit_entries_event_id_key ON audit_entries (event_id) WHERE event_id <> '';

-- Append only: rows cannot be changed or removed through ordinary SQL. The
-- table's owner or a superuser can still disable the triggers; the hash
-- chain is what shows that they did.
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries
	FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
	FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
