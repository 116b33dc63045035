/** Every topic name lives here (qoe.<entity>.v1, dead letters in .dlq). */
export const TOPICS = {
  beacons: 'qoe.beacons.v1',
  beaconsDlq: 'qoe.beacons.v1.dlq',
  metrics: 'qoe.metrics.v1',
  steering: 'qoe.steering.v1',
  processorState: 'qoe.processor-state.v1',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export const CONSUMER_GROUPS = {
  processor: 'qoe-processor',
  sink: 'qoe-sink',
  detector: 'qoe-detector',
} as const;
