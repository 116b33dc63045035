/**
 * V8 flags qoe-stream runs with (`npm start`, the Dockerfile's CMD; test/node-flags checks both, and
 * bench/kafka.ts starts its roles with them).
 *
 * --max-semi-space-size=32 (MB): the young generation, where the processor's per-event garbage
 * (decoded events, Avro buffers, Kafka records) is collected. With Node 20's default, scavenges ran
 * so often that short-lived objects were promoted and collected again by the old generation's
 * collector: ~18 % of the Kafka processor's CPU went to garbage collection. With 32 MB the processor
 * + sink bench ran ~15 % more events per core on both paths (bench/README.md, 2026-11-30), and 64 or
 * 128 MB gained nothing more. It costs up to ~96 MB of young generation per process.
 *
 * --single-threaded-gc: V8 collects on the main thread only, without its parallel and concurrent
 * helper threads. Their work is not free: on the Kafka processor it was ~20 % of the process's CPU
 * beside the main thread, and collecting in one thread costs less CPU in all than coordinating
 * several. Processor + sink on Kafka: +6 % events per core (3 alternating pairs, each in its
 * favour); ingest and freshness unchanged (bench/README.md, 2026-11-30 third session). The price is
 * longer pauses (the main thread marks the old generation itself): milliseconds for the young
 * generation, more for a large old one, far below any timeout here. Drop it where pause time
 * matters more than CPU per event.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--single-threaded-gc'];
