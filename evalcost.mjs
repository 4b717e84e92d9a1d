import { Redis } from 'ioredis';
import { Queue } from './dist/src/index.js';
const redis = new Redis('redis://127.0.0.1:6399');
const q = new Queue('seq', { connection: redis, prefix: 'cost' });
await q.send({ i: 0, ts: Date.now() });
await redis.config('RESETSTAT');
for (let i = 0; i < 20000; i++) await q.send({ i, ts: Date.now() });
console.log((await redis.info('commandstats')).split('\n').filter((l) => /evalsha/.test(l)).join('\n'));
redis.disconnect();
