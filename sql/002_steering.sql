-- Steering decisions: the audit log of every decision the steering service issued or suppressed,
-- and the source it replays current decisions from on restart. One row per decision.
-- applied = 0: a detector decision recorded while the kill switch was on (never served; seq = 0).
-- Runs on ClickHouse 18.16 and current versions: no Map, JSON, DateTime64, TTL or LowCardinality;
-- exact milliseconds are kept next to the DateTime used for partitioning.
CREATE TABLE IF NOT EXISTS qoe_steering_decisions
(
    issued_at DateTime,
    issued_at_ms Int64,
    seq UInt64,
    id String,
    schema_version UInt8,
    country String,
    asn String,
    priority Array(String),
    action String,
    reason_metric String,
    reason_cdn String,
    reason_value Float64,
    reason_baseline Float64,
    reason_score Float64,
    reason_window_start_ms Int64,
    reason_window_ms Int64,
    reason_detail String,
    ttl_ms Int64,
    applied UInt8
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(issued_at)
ORDER BY (issued_at, seq);
