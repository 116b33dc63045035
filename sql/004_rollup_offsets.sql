-- Roll-ups know which source offsets they hold, so the sink can find and repair rows a roll-up missed.
--
-- ClickHouse writes an insert into qoe_metrics as a part of the raw table and then one part per
-- materialized view. A server that stops between the two keeps the raw rows without their roll-up
-- states, and the client sees an error. The sink's retry then finds the rows stored (src_offset) and
-- skips them: the roll-up would stay short for good. Each roll-up row now also holds, per source
-- partition p, the highest src_offset + 1 among its raw rows (element p of a maxForEach state; 0 =
-- none). The sink compares that with max(src_offset) of qoe_metrics after a failed insert and when it
-- takes a partition over, and adds the states of the rows a roll-up lacks from the raw rows
-- (processors/sink.ts, sql/rollups.ts). That works because what a table holds of a partition is always
-- all its offsets up to the highest held: the sink inserts each partition in offset order, one
-- day (one part per table) at a time.
--
-- 18.16: no maxMap, no `ADD COLUMN IF NOT EXISTS`, and a lambda may not use two columns; the state
-- is built with arrayResize/arrayPushBack, and sql/migrate.ts skips an ADD COLUMN whose column exists.
-- A view must be dropped before its target gains a column (the old view would fail every insert)
-- and created again after. Upgrade with the sink stopped, as for 003: an insert between the DROP and
-- the CREATE would miss the roll-ups.
--
-- Existing roll-up rows get their offsets from an offsets-only backfill (empty sum states, which merge
-- as 0): the roll-ups are taken to hold everything qoe_metrics held before this migration. It
-- aggregates on one thread, as every INSERT … SELECT …State here (sql/rollups.ts says why).

DROP TABLE IF EXISTS qoe_metrics_1m_mv;

ALTER TABLE qoe_metrics_1m ADD COLUMN src_offsets AggregateFunction(maxForEach, Array(UInt64));

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
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist,
    maxForEachState(arrayPushBack(arrayResize(emptyArrayUInt64(), src_partition), src_offset + 1)) AS src_offsets
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3;

-- Offsets of the rows qoe_metrics_1m already holds.
INSERT INTO qoe_metrics_1m (window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3, src_offsets)
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
    maxForEachState(arrayPushBack(arrayResize(emptyArrayUInt64(), src_partition), src_offset + 1)) AS src_offsets
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3
SETTINGS max_threads = 1;

DROP TABLE IF EXISTS qoe_metrics_1h_mv;

ALTER TABLE qoe_metrics_1h ADD COLUMN src_offsets AggregateFunction(maxForEach, Array(UInt64));

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
    sumMapState(ttfb_hist_keys, ttfb_hist_counts) AS ttfb_hist,
    maxForEachState(arrayPushBack(arrayResize(emptyArrayUInt64(), src_partition), src_offset + 1)) AS src_offsets
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3;

-- Offsets of the rows qoe_metrics_1h already holds.
INSERT INTO qoe_metrics_1h (window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3, src_offsets)
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
    maxForEachState(arrayPushBack(arrayResize(emptyArrayUInt64(), src_partition), src_offset + 1)) AS src_offsets
FROM qoe_metrics
GROUP BY window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3
SETTINGS max_threads = 1;
