-- Recordings: one row per recording, the filterable columns beside the
-- metadata document the store owns (doc), which the catalog does not read.
-- Times are unix microseconds (UTC) so that ordering and ranges are exact.
CREATE TABLE recordings (
	id             {{text}} PRIMARY KEY,
	call_id        {{text}} NOT NULL,
	interaction_id {{text}} NOT NULL,
	account        {{text}} NOT NULL,
	endpoint       {{text}} NOT NULL DEFAULT '',
	owner          {{text}} NOT NULL DEFAULT '',
	origin         {{text}} NOT NULL DEFAULT '',
	scope          {{text}} NOT NULL DEFAULT '',
	start_us       {{bigint}} NOT NULL,
	state          {{text}} NOT NULL,
	flags          {{text}} NOT NULL DEFAULT '[]',
	hold           INTEGER NOT NULL DEFAULT 0,
	path           {{text}} NOT NULL DEFAULT '',
	doc            {{blob}},
	created_us     {{bigint}} NOT NULL,
	updated_us     {{bigint}} NOT NULL
);
-- Every filter is an equality on the leading column followed by the page
-- order (start_us, id), so a page is one index range scan.
CREATE INDEX recordings_start ON recordings (start_us, id);
CREATE INDEX recordings_account ON recordings (account, start_us, id);
CREATE INDEX recordings_endpoint ON recordings (endpoint, start_us, id);
CREATE INDEX recordings_owner ON recordings (owner, start_us, id);
CREATE INDEX recordings_call ON recordings (call_id, start_us, id);
CREATE INDEX recordings_interaction ON recordings (interaction_id, start_us, id);
CREATE INDEX recordings_state ON recordings (state, start_us, id);

-- The upload queue: at most one upload per recording.
CREATE TABLE uploads (
	recording_id     {{text}} PRIMARY KEY REFERENCES recordings (id),
	target           {{text}} NOT NULL,
	state            {{text}} NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	first_attempt_us {{bigint}} NOT NULL DEFAULT 0,
	next_us          {{bigint}} NOT NULL,
	last_error       {{text}} NOT NULL DEFAULT '',
	enqueued_us      {{bigint}} NOT NULL,
	updated_us       {{bigint}} NOT NULL
);
CREATE INDEX uploads_due ON uploads (state, next_us, recording_id);
CREATE INDEX uploads_enqueued ON uploads (state, enqueued_us, recording_id);

-- The audit trail of control actions, deletions and holds.
CREATE TABLE audit (
	seq          {{serial}},
	at_us        {{bigint}} NOT NULL,
	who          {{text}} NOT NULL,
	action       {{text}} NOT NULL,
	account      {{text}} NOT NULL DEFAULT '',
	call_id      {{text}} NOT NULL DEFAULT '',
	recording_id {{text}} NOT NULL DEFAULT '',
	result       {{text}} NOT NULL DEFAULT ''
);
CREATE INDEX audit_account ON audit (account, seq);
CREATE INDEX audit_recording ON audit (recording_id, seq);
CREATE INDEX audit_call ON audit (call_id, seq);
CREATE INDEX audit_who ON audit (who, seq);

-- Leases: one holder per name (a switch) until expires_us.
CREATE TABLE leases (
	name       {{text}} PRIMARY KEY,
	holder     {{text}} NOT NULL,
	expires_us {{bigint}} NOT NULL
);
