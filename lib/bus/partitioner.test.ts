import { describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import { murmur2, partitionForKey, toPositive } from './partitioner.js';

describe('murmur2', () => {
  // Expected values from Apache Kafka's own test of Utils.murmur2:
  // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2().
  const kafkaUtilsTest: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  it.each(kafkaUtilsTest)('Utils.murmur2(%j) = %i', (input, expected) => {
    expect(murmur2(Buffer.from(input, 'utf8'))).toBe(expected);
  });

  // Expected values published for the Java client's murmur2 (string keys as UTF-8, every tail length
  // 0–3 is covered): tulios/kafkajs src/producer/partitioners/defaultJava/murmur2.spec.js ("Generated with
  // src/producer/partitioners/defaultJava/Test.java") and akka/pekko Murmur2Spec ("expected correct hash
  // values from the kafka murmur2 impl").
  const javaGenerated: Array<[string, number]> = [
    ['0', 971027396],
    ['1', -1993445489],
    ['12', 126087238],
    ['123', -267702483],
    ['1234', -1614185708],
    ['12345', -1188365604],
    ['128', -326012175],
    ['2187', -1508407203],
    ['16384', -325739742],
    ['78125', -1654490814],
    ['279936', 1462227128],
    ['823543', -2014198330],
    ['2097152', 607668903],
    ['4782969', -1182699775],
    ['10000000', -1830336757],
    ['19487171', -1603849305],
    ['35831808', -857013643],
    ['62748517', -1167431028],
    ['105413504', -381294639],
    ['170859375', -1658323481],
    ['100:48069', 1009543857],
  ];
  it.each(javaGenerated)('Java murmur2(%j) = %i', (input, expected) => {
    expect(murmur2(Buffer.from(input, 'utf8'))).toBe(expected);
  });
});

describe('toPositive', () => {
  it.each([
    [0, 0],
    [5, 5],
    [-1, 0x7fffffff],
    [-2147483648, 0],
    [-973932308, -973932308 & 0x7fffffff],
  ])('toPositive(%i) = %i', (n, expected) => {
    expect(toPositive(n)).toBe(expected);
  });
});

describe('partitionForKey', () => {
  // Partitions computed by the Java DefaultPartitioner with 120 partitions, keys with a multi-byte UTF-8
  // character: SOHU-Co/kafka-node test/test.partitioner.js ("Ran against Java DefaultPartitioner").
  const javaPartitions: Array<[string, number]> = [
    ['\u263a tlw61or', 101],
    ['\u263a ww50w20ggb9', 26],
    ['\u263a tf706z9i2v86w29', 40],
    ['\u263a pgb9', 1],
    ['\u263a b9', 8],
  ];
  it.each(javaPartitions)('key %j → partition %i of 120', (key, expected) => {
    expect(partitionForKey(key, 120)).toBe(expected);
  });

  it('agrees with kafkajs DefaultPartitioner (Java-compatible) on many keys and partition counts', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    for (const numPartitions of [1, 2, 3, 7, 12, 64]) {
      const partitionMetadata = Array.from({ length: numPartitions }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        replicas: [0],
        isr: [0],
        partitionErrorCode: 0,
      }));
      for (let i = 0; i < 500; i++) {
        const key = i === 0 ? '' : i % 5 === 0 ? `sess-\u00e9\u4e2d-${i}` : `session-${i * 7919}`;
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(partitionForKey(key, numPartitions)).toBe(expected);
      }
    }
  });

  it('rejects a non-positive partition count', () => {
    expect(() => partitionForKey('k', 0)).toThrow(RangeError);
  });
});
