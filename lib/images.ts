/**
 * Container images of the services qoe-stream runs against. docker-compose.yml names these exact
 * images (a test checks it), and the test helpers use them through testcontainers when a Docker
 * engine is reachable.
 */
export const IMAGES = {
  kafka: 'apache/kafka:4.1.0',
  clickhouse: 'clickhouse/clickhouse-server:25.8',
  grafana: 'grafana/grafana:12.2.0',
  prometheus: 'prom/prometheus:v3.5.0',
  node: 'node:20-bookworm-slim',
} as const;
