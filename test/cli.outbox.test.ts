import { describe, expect, it } from 'vitest';
import { runCli } from './cli.helpers.js';
import { mysqlUrl, useOutbox } from './outbox.helpers.js';

const ctx = useOutbox();

describe('sluice outbox (MariaDB)', () => {
  it('status shows the backlog; retry-failed puts FAILED rows back; status includes the outbox', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    for (let n = 1; n <= 3; n++) {
      await outbox.publishInTransaction(() => undefined, {
        aggregateType: 'account',
        aggregateId: n,
        type: 'account.created',
        data: { n },
        id: `evt-${n}`,
      });
    }
    // No relay runs: all three are pending. One is marked FAILED as the relay would after maxAttempts.
    await ctx.pool.query(`UPDATE \`${table}\` SET status = 'FAILED', last_error = 'refused' WHERE event_id = 'evt-2'`);
    const args = ['--prefix', prefix, '--bus', 'bus', '--table', table];

    const status = await runCli(['outbox', 'status', ...args, '--json'], { MYSQL_URL: mysqlUrl() });
    expect(status.code).toBe(0);
    expect(status.json()).toMatchObject({ table, pending: 2, failed: 1, published: 0 });
    expect(status.json().failedRows).toMatchObject([{ eventId: 'evt-2', lastError: 'refused' }]);
    const human = await runCli(['outbox', 'status', ...args, '--mysql-url', mysqlUrl()]);
    expect(human.stdout).toMatch(/^pending:\s+2$/m);
    expect(human.stdout).toMatch(/^evt-2\s+account\.created\s+account\/2\s+/m);

    const retried = await runCli(['outbox', 'retry-failed', ...args, '--json'], { MYSQL_URL: mysqlUrl() });
    expect(retried.json()).toEqual({ table, retried: 1 });
    expect(await ctx.statuses(table)).toEqual({ PENDING: 3 });

    const all = await runCli(['status', ...args, '--json'], { MYSQL_URL: mysqlUrl() });
    expect(all.json().outbox).toMatchObject({ pending: 3, failed: 0 });

    // An outbox table that does not exist: the queues and buses are still shown, the outbox says why, exit 1.
    await bus.publish('account.created', { n: 0 });
    const noTable = ['--prefix', prefix, '--bus', 'bus', '--table', `${table}_missing`];
    const unreadable = await runCli(['status', ...noTable], { MYSQL_URL: mysqlUrl() });
    expect(unreadable.code).toBe(1);
    expect(unreadable.stdout).toMatch(/^prefix .*: 0 queues, 1 bus$/m);
    expect(unreadable.stdout).toMatch(/^outbox: .*doesn't exist/m);
    const json = await runCli(['status', ...noTable, '--json'], { MYSQL_URL: mysqlUrl() });
    expect(json.json().outbox.error).toMatch(/doesn't exist/);
    expect(json.json().buses.map((b: { name: string }) => b.name)).toEqual(['bus']);
  });

  it('without a MySQL URL the outbox commands are a usage error; an unreachable MySQL exits 3', async () => {
    const missing = await runCli(['outbox', 'status']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/need --mysql-url or MYSQL_URL/);
    const unreachable = await runCli(['outbox', 'status', '--mysql-url', 'mysql://root@127.0.0.1:1/test']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
  });
});
