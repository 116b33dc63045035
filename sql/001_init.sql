-- Window metrics: one row per window × dimension set × emission. Every column is a sum or a
-- mergeable histogram (sparse log buckets, merged with sumMap), so any re-aggregation across
-- windows and dimensions is exact. Time sums are signed: a correction is a row with negative values.
-- Runs on ClickHouse 18.16 and current versions: no LowCardinality, Map, DateTime64 or TTL.
CREATE TABLE IF NOT EXISTS qoe_metrics
(
    window_start DateTime,
    window_ms UInt32,
    cdn String,
    country String,
    asn String,
    content_id String,
    stream_type String,
    player_name String,
    player_version String,
    device_type String,
    os String,
    browser String,
    custom1 String,
    custom2 String,
    custom3 String,
    attempts Int64,
    plays Int64,
    vsf Int64,
    ebvs Int64,
    vpf Int64,
    ended Int64,
    vst_count Int64,
    vst_sum_ms Int64,
    vst_hist_keys Array(UInt16),
    vst_hist_counts Array(Int64),
    starting_ms Int64,
    playing_ms Int64,
    paused_ms Int64,
    rebuffer_ms Int64,
    rebuffer_count Int64,
    seek_ms Int64,
    seek_count Int64,
    active_ms Int64,
    bitrate_keys Array(UInt16),
    bitrate_playing_ms Array(Int64),
    bits_played Int64,
    dropped_frames Int64,
    requests Int64,
    request_errors Int64,
    ttfb_hist_keys Array(UInt16),
    ttfb_hist_counts Array(Int64),
    ttlb_sum_ms Int64,
    src_partition UInt32,
    src_offset UInt64
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, cdn, country, src_partition, src_offset);

-- Errors by code, same window and dimensions as qoe_metrics.
CREATE TABLE IF NOT EXISTS qoe_errors
(
    window_start DateTime,
    window_ms UInt32,
    cdn String,
    country String,
    asn String,
    content_id String,
    stream_type String,
    player_name String,
    player_version String,
    device_type String,
    os String,
    browser String,
    custom1 String,
    custom2 String,
    custom3 String,
    error_code String,
    fatal UInt8,
    count Int64,
    src_partition UInt32,
    src_offset UInt64
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, cdn, country, error_code, src_partition, src_offset);

-- Events that could not be counted in their window (late beyond grace, undecodable, out of bounds):
-- kept, with the reason, never silently dropped.
CREATE TABLE IF NOT EXISTS qoe_dead_letters
(
    dead_at DateTime,
    reason String,
    session_id String,
    event_ts DateTime,
    payload String,
    src_partition UInt32,
    src_offset UInt64
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(dead_at)
ORDER BY (dead_at, reason, src_partition, src_offset);
