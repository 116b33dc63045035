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
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
