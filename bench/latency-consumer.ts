import { preciseNow } from './measure.js';
import { createSystem, type Payload, type SystemKind } from './systems.js';

/**
 * The consumer of the latency case, in a process of its own (started by cases.ts with fork):
 *   argv: system name, Redis URL, key prefix, concurrency
 * It records, per message, the time from send (payload.ts) to the start of its handler. Warm-up messages
 * carry i = -1 and are not recorded. On {stop: n} it waits (at most 10 s) until n were recorded, replies
 * {latencies} and exits.
 */

const [name, url, prefix, concurrency] = process.argv.slice(2) as [SystemKind, string, string, string];
const system = createSystem(name, url, prefix);
const latencies: number[] = [];
const running = await system.consume(Number(concurrency), (payload: Payload) => {
  if (payload.i >= 0) latencies.push(preciseNow() - payload.ts);
});
process.send!({ ready: true });
process.on('message', async (message: { stop: number }) => {
  const deadline = Date.now() + 10_000;
  while (latencies.length < message.stop && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await running.close();
  await system.close();
  process.send!({ latencies }, () => process.exit(0));
});
