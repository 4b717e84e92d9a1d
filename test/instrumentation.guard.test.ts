import { describe, expect, it } from 'vitest';
import type { Instrumentation } from '../src/index.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

// A hook that throws (a user's propagator, a custom hook) costs a call its tracing, never the call.
describe('instrumentation hooks that throw', () => {
  it('a send, a sendMany and a handler run go on untraced; nothing is dead-lettered', async () => {
    const broken: Instrumentation = {
      produce: () => {
        throw new Error('tracer bug in produce');
      },
      process: () => ({
        run: () => {
          throw new Error('tracer bug in run');
        },
        end: () => {
          throw new Error('tracer bug in end');
        },
      }),
    };
    const queue = env.queue<string>('guarded', { instrumentation: broken, defaultMaxRetries: 0 });
    expect(typeof (await queue.send('one'))).toBe('string');
    expect(await queue.sendMany([{ payload: 'two' }, { payload: 'three' }])).toHaveLength(2);
    const handled: string[] = [];
    const consumer = queue.consume((message) => {
      handled.push(message.payload);
    });
    await waitFor(async () => (await queue.getStats()).counters.acked === 3, 'three acks');
    await consumer.close();
    expect(handled.sort()).toEqual(['one', 'three', 'two']);
    expect((await queue.getStats()).deadLetters).toBe(0);
  });

  it("a handler's own error is still the handler's: it is retried, not run twice", async () => {
    let runs = 0;
    const passing: Instrumentation = {
      produce: () => null,
      process: () => ({ run: (handler) => handler(), end: () => undefined }),
    };
    const queue = env.queue<string>('guarded-fail', { instrumentation: passing, defaultMaxRetries: 0 });
    await queue.send('boom');
    const consumer = queue.consume(() => {
      runs++;
      throw new Error('handler failed');
    });
    await waitFor(async () => (await queue.getStats()).deadLetters === 1, 'the dead letter');
    await consumer.close();
    expect(runs).toBe(1);
  });
});
