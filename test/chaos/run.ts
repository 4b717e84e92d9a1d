// npm run chaos [-- --messages=100000] [-- --rate=800] [-- --events=10000]
// Runs the chaos suite (test/chaos/harness.ts), prints the accounting and exits 1 when a guarantee broke.
import { runChaos } from './harness.js';

const arg = (name: string): number | undefined => {
  const found = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? undefined : Number(found.slice(name.length + 3));
};

const messages = arg('messages') ?? 100_000;
const report = await runChaos({
  messages,
  rate: arg('rate') ?? 800,
  ...(arg('events') === undefined ? {} : { events: arg('events')! }),
  ...(arg('faultEveryMs') === undefined ? {} : { faultEveryMs: arg('faultEveryMs')! }),
});
console.log(report.table);
const examples = [...report.queue.examples, ...report.bus.flatMap((b) => b.examples), ...report.locks.examples];
if (examples.length > 0) console.log(`\nexamples:\n  ${examples.slice(0, 30).join('\n  ')}`);
const t = report.total;
const l = report.locks;
const broken =
  t.lost > 0 ||
  t.vanishedRetries > 0 ||
  t.duplicatesUnexplained > 0 ||
  t.doubleLeases > 0 ||
  t.extraCopies > 0 ||
  report.publishMisreported > 0 ||
  l.overlaps > 0 ||
  l.fenceOrderViolations > 0 ||
  l.duplicateFences > 0 ||
  l.fencesUnreceived > 2 * l.contendersKilled;
if (report.dir) console.log(`\nrecords and AOF kept in ${report.dir}`);
console.log(
  broken
    ? '\nFAILED: a guarantee broke (see above)'
    : '\nOK: nothing lost, no unexplained duplicate, no double lease, fences in order',
);
process.exit(broken ? 1 : 0);
