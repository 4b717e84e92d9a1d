// npm run example:notifications [-- --seed=7 --signals=200 --users=20 --keep]
// Runs seed 002's notification pipeline once against REDIS_URL (default redis://127.0.0.1:6379) and MYSQL_URL
// (default mysql://root@127.0.0.1:3306/test), prints the summary, then deletes the run's keys and rows
// (unless --keep).
import { deleteRunData, runNotificationPipeline } from './pipeline.js';
import { formatSummary } from './summary.js';

function flag(name: string): string | undefined {
  const arg = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (arg === undefined) return undefined;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : '';
}

function numberFlag(name: string, fallback: number): number {
  const text = flag(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, got ${text}`);
  return value;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const say = (text: string) => console.log(`${String(Date.now() - t0).padStart(6)} ms  ${text}`);
  const result = await runNotificationPipeline({
    seed: numberFlag('seed', 1),
    signals: numberFlag('signals', 200),
    users: numberFlag('users', 20),
    log: say,
  });
  say(`done in ${result.elapsedMs} ms (prefix ${result.prefix})`);
  console.log(`\n${formatSummary(result.summary)}\n`);
  if (flag('keep') === undefined) {
    const deleted = await deleteRunData({ prefix: result.prefix });
    say(`deleted ${deleted.redisKeys} Redis keys and ${deleted.inAppRows} in-app rows of the run`);
  } else {
    say(`kept the run's keys ({${result.prefix}:...}) and its in-app rows (run_id ${result.prefix})`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
