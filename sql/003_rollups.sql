-- Roll-ups of qoe_metrics to 1 minute and 1 hour, kept by materialized views.
--
-- Exact, not approximate: every qoe_metrics column is a sum or a sparse histogram, so a roll-up row
-- holds sumState/sumMapState of the raw rows of its minute (hour) × dimension set, and a query reads
-- them with sumMerge/sumMapMerge: the same integers as sum/sumMap over the raw rows. A view sees
-- each insert into qoe_metrics exactly once, and the sink never inserts a row twice (src offsets).
-- A raw row belongs to the minute (hour) holding its window_start, which is also the rule the query
-- API buckets raw rows by, so results agree even for windows that do not divide a minute.
--
-- AggregatingMergeTree with -State combinators: ClickHouse 18.16 and current versions (chDB).
-- SummingMergeTree is not used: it would need the histograms as Nested `…Map` columns and drops
-- rows whose sums are all zero, which a correction row can produce.
--
-- Existing data: the views see only inserts made after they exist. Rows already in qoe_metrics are
-- copied in by the INSERT … SELECT below, guarded so that a re-run copies nothing (the migration
-- runs again if it failed half-way). Upgrade with the sink stopped: an insert racing the copy can be
-- counted twice or not at all (docs/metrics.md, "Roll-ups"). The copy aggregates on one thread:
-- 18.16 sometimes stores corrupt states from a multi-threaded INSERT … SELECT …State (sql/rollups.ts).

CREATE TABLE IF NOT EXISTS qoe_metrics_1m
(
    window_start DateTime,
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
    attempts AggregateFunction(sum, Int64),
    plays AggregateFunction(sum, Int64),
    vsf AggregateFunction(sum, Int64),
    ebvs AggregateFunction(sum, Int64),
    vpf AggregateFunction(sum, Int64),
    ended AggregateFunction(sum, Int64),
    vst_count AggregateFunction(sum, Int64),
    vst_sum_ms AggregateFunction(sum, Int64),
    starting_ms AggregateFunction(sum, Int64),
    playing_ms AggregateFunction(sum, Int64),
    paused_ms AggregateFunction(sum, Int64),
    rebuffer_ms AggregateFunction(sum, Int64),
    rebuffer_count AggregateFunction(sum, Int64),
    seek_ms AggregateFunction(sum, Int64),
    seek_count AggregateFunction(sum, Int64),
    active_ms AggregateFunction(sum, Int64),
    bits_played AggregateFunction(sum, Int64),
    dropped_frames AggregateFunction(sum, Int64),
    requests AggregateFunction(sum, Int64),
    request_errors AggregateFunction(sum, Int64),
    ttlb_sum_ms AggregateFunction(sum, Int64),
    vst_hist AggregateFunction(sumMap, Array(UInt16), Array(Int64)),
    bitrate_ms AggregateFunction(sumMap, Array(UInt16), Array(Int64)),
    ttfb_hist AggregateFunction(sumMap, Array(UInt16), Array(Int64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3);

CREATE MATERIALIZED VIEW IF NOT EXISTS qoe_metrics_1m_mv TO qoe_metrics_1m
AS SELECT
    toStartOfMinute(window_start) AS window_start,
    cdn,
    country,
    asn,
    content_id,
    stream_type,
    player_name,
    player_version,
    device_type,
    os,
    browser,
    custom1,
    custom2,
    custom3,
    sumState(attempts) AS attempts,
    sumState(plays) AS plays,
    sumState(vsf) AS vsf,
    sumState(ebvs) AS ebvs,
    sumState(vpf) AS vpf,
    sumState(ended) AS ended,
    sumState(vst_count) AS vst_count,
    sumState(vst_sum_ms) AS vst_sum_ms,
    sumState(starting_ms) AS starting_ms,
    sumState(playing_ms) AS playing_ms,
    sumState(paused_ms) AS paused_ms,
    sumState(rebuffer_ms) AS rebuffer_ms,
    sumState(rebuffer_count) AS rebuffer_count,
    sumState(seek_ms) AS seek_ms,
    sumState(seek_count) AS seek_count,
    sumState(active_ms) AS active_ms,
    sumState(bits_played) AS bits_played,
    sumState(dropped_frames) AS dropped_frames,
    sumState(requests) AS requests,
    sumState(request_errors) AS request_errors,
    sumState(ttlb_sum_ms) AS ttlb_sum_ms,
    sumMapState(vst_hist_keys, vst_hist_counts) AS vst_hist,
    sumMapState(bitrate_keys, bitrate_playing_ms) AS bitrate_ms,
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3;

CREATE TABLE IF NOT EXISTS qoe_metrics_1h
(
    window_start DateTime,
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
    attempts AggregateFunction(sum, Int64),
    plays AggregateFunction(sum, Int64),
    vsf AggregateFunction(sum, Int64),
    ebvs AggregateFunction(sum, Int64),
    vpf AggregateFunction(sum, Int64),
    ended AggregateFunction(sum, Int64),
    vst_count AggregateFunction(sum, Int64),
    vst_sum_ms AggregateFunction(sum, Int64),
    starting_ms AggregateFunction(sum, Int64),
    playing_ms AggregateFunction(sum, Int64),
    paused_ms AggregateFunction(sum, Int64),
    rebuffer_ms AggregateFunction(sum, Int64),
    rebuffer_count AggregateFunction(sum, Int64),
    seek_ms AggregateFunction(sum, Int64),
    seek_count AggregateFunction(sum, Int64),
    active_ms AggregateFunction(sum, Int64),
    bits_played AggregateFunction(sum, Int64),
    dropped_frames AggregateFunction(sum, Int64),
    requests AggregateFunction(sum, Int64),
    request_errors AggregateFunction(sum, Int64),
    ttlb_sum_ms AggregateFunction(sum, Int64),
    vst_hist AggregateFunction(sumMap, Array(UInt16), Array(Int64)),
    bitrate_ms AggregateFunction(sumMap, Array(UInt16), Array(Int64)),
    ttfb_hist AggregateFunction(sumMap, Array(UInt16), Array(Int64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3);

CREATE MATERIALIZED VIEW IF NOT EXISTS qoe_metrics_1h_mv TO qoe_metrics_1h
AS SELECT
    toStartOfHour(window_start) AS window_start,
    cdn,
    country,
    asn,
    content_id,
    stream_type,
    player_name,
    player_version,
    device_type,
    os,
    browser,
    custom1,
    custom2,
    custom3,
    sumState(attempts) AS attempts,
    sumState(plays) AS plays,
    sumState(vsf) AS vsf,
    sumState(ebvs) AS ebvs,
    sumState(vpf) AS vpf,
    sumState(ended) AS ended,
    sumState(vst_count) AS vst_count,
    sumState(vst_sum_ms) AS vst_sum_ms,
    sumState(starting_ms) AS starting_ms,
    sumState(playing_ms) AS playing_ms,
    sumState(paused_ms) AS paused_ms,
    sumState(rebuffer_ms) AS rebuffer_ms,
    sumState(rebuffer_count) AS rebuffer_count,
    sumState(seek_ms) AS seek_ms,
    sumState(seek_count) AS seek_count,
    sumState(active_ms) AS active_ms,
    sumState(bits_played) AS bits_played,
    sumState(dropped_frames) AS dropped_frames,
    sumState(requests) AS requests,
    sumState(request_errors) AS request_errors,
    sumState(ttlb_sum_ms) AS ttlb_sum_ms,
    sumMapState(vst_hist_keys, vst_hist_counts) AS vst_hist,
    sumMapState(bitrate_keys, bitrate_playing_ms) AS bitrate_ms,
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3;

-- Backfill, only into an empty roll-up.
INSERT INTO qoe_metrics_1m
SELECT
    toStartOfMinute(window_start) AS window_start,
    cdn,
    country,
    asn,
    content_id,
    stream_type,
    player_name,
    player_version,
    device_type,
    os,
    browser,
    custom1,
    custom2,
    custom3,
    sumState(attempts) AS attempts,
    sumState(plays) AS plays,
    sumState(vsf) AS vsf,
    sumState(ebvs) AS ebvs,
    sumState(vpf) AS vpf,
    sumState(ended) AS ended,
    sumState(vst_count) AS vst_count,
    sumState(vst_sum_ms) AS vst_sum_ms,
    sumState(starting_ms) AS starting_ms,
    sumState(playing_ms) AS playing_ms,
    sumState(paused_ms) AS paused_ms,
    sumState(rebuffer_ms) AS rebuffer_ms,
    sumState(rebuffer_count) AS rebuffer_count,
    sumState(seek_ms) AS seek_ms,
    sumState(seek_count) AS seek_count,
    sumState(active_ms) AS active_ms,
    sumState(bits_played) AS bits_played,
    sumState(dropped_frames) AS dropped_frames,
    sumState(requests) AS requests,
    sumState(request_errors) AS request_errors,
    sumState(ttlb_sum_ms) AS ttlb_sum_ms,
    sumMapState(vst_hist_keys, vst_hist_counts) AS vst_hist,
    sumMapState(bitrate_keys, bitrate_playing_ms) AS bitrate_ms,
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist
FROM qoe_metrics
WHERE (SELECT count() FROM qoe_metrics_1m) = 0
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3
SETTINGS max_threads = 1;

-- Backfill, only into an empty roll-up.
INSERT INTO qoe_metrics_1h
SELECT
    toStartOfHour(window_start) AS window_start,
    cdn,
    country,
    asn,
    content_id,
    stream_type,
    player_name,
    player_version,
    device_type,
    os,
    browser,
    custom1,
    custom2,
    custom3,
    sumState(attempts) AS attempts,
    sumState(plays) AS plays,
    sumState(vsf) AS vsf,
    sumState(ebvs) AS ebvs,
    sumState(vpf) AS vpf,
    sumState(ended) AS ended,
    sumState(vst_count) AS vst_count,
    sumState(vst_sum_ms) AS vst_sum_ms,
    sumState(starting_ms) AS starting_ms,
    sumState(playing_ms) AS playing_ms,
    sumState(paused_ms) AS paused_ms,
    sumState(rebuffer_ms) AS rebuffer_ms,
    sumState(rebuffer_count) AS rebuffer_count,
    sumState(seek_ms) AS seek_ms,
    sumState(seek_count) AS seek_count,
    sumState(active_ms) AS active_ms,
    sumState(bits_played) AS bits_played,
    sumState(dropped_frames) AS dropped_frames,
    sumState(requests) AS requests,
    sumState(request_errors) AS request_errors,
    sumState(ttlb_sum_ms) AS ttlb_sum_ms,
    sumMapState(vst_hist_keys, vst_hist_counts) AS vst_hist,
    sumMapState(bitrate_keys, bitrate_playing_ms) AS bitrate_ms,
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist
FROM qoe_metrics
WHERE (SELECT count() FROM qoe_metrics_1h) = 0
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3
SETTINGS max_threads = 1;
