// First: the patch must run before anything loads kafkajs, as in the adapter's files.
import { groupMessagesPerPartition, kafkajsPatched } from './kafkajs-patches.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createKafkaBus } from './kafka.js';
import type * as Kafkajs from 'kafkajs';

const require = createRequire(import.meta.url);

/** kafkajs's own implementation, evaluated from its file (the module cache now holds ours). */
function original(): typeof groupMessagesPerPartition {
  const file = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const mod = { exports: undefined as unknown };
  new Function('module', 'exports', 'require', readFileSync(file, 'utf8'))(mod, mod.exports, require);
  return mod.exports as typeof groupMessagesPerPartition;
}

const { Partitioners } = require('kafkajs') as typeof Kafkajs;

describe('kafkajs patch: linear groupMessagesPerPartition', () => {
  it('is what kafkajs loads (patched before kafkajs was required)', () => {
    expect(typeof createKafkaBus).toBe('function');
    expect(kafkajsPatched).toBe(true);
    expect(require('kafkajs/src/producer/groupMessagesPerPartition.js')).toBe(groupMessagesPerPartition);
  });

  it('groups exactly as kafkajs 2.2.4 does: same partitions, same messages, same order', () => {
    const kafkajs = original();
    expect(kafkajs).not.toBe(groupMessagesPerPartition);
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 12 }),
      fc.array(fc.record({ key: fc.string({ maxLength: 8 }), partition: fc.option(fc.integer({ min: 0, max: 11 }), { nil: undefined }) }), { maxLength: 200 }),
      (n, raw) => {
        const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 1 }));
        const messages = raw.map((m, i) => ({ key: m.key, value: Buffer.from(String(i)), ...(m.partition !== undefined && m.partition < n ? { partition: m.partition } : {}) }));
        const args = { topic: 't', partitionMetadata, messages, partitioner: Partitioners.DefaultPartitioner() as never };
        expect(groupMessagesPerPartition(args)).toEqual(kafkajs(args));
      },
    ));
  });
});
