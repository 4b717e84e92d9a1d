import { Queue } from '../src/index.js';

/**
 * The responder of bench/request.ts, in a process of its own (started with fork):
 *   argv: Redis URL, key prefix, concurrency
 * Answers each request { n, ts } with { n } at once. Replies 'ready' once consuming; exits on 'stop'.
 */

const [url, prefix, concurrency] = process.argv.slice(2) as [string, string, string];
const queue = new Queue<{ n: number }>('rpc', { connection: url, prefix });
queue.consume(({ payload }) => ({ n: payload.n }), { concurrency: Number(concurrency) });
process.send!('ready');
process.on('message', async () => {
  await queue.close();
  process.exit(0);
});
