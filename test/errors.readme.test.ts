import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as main from '../src/index.js';
import * as outbox from '../src/outbox/index.js';
import * as service from '../src/service/index.js';
import * as dashboard from '../src/dashboard/index.js';
import { SluiceError } from '../src/errors.js';

const root = new URL('..', import.meta.url);

/** Every SluiceError subclass declared in src/errors.ts, with the code(s) its constructor gives `super`. */
function declaredErrors(): Map<string, string[]> {
  const source = readFileSync(new URL('src/errors.ts', root), 'utf8');
  const declared = new Map<string, string[]>();
  const classes = [...source.matchAll(/^export class (\w+) extends SluiceError \{$/gm)];
  classes.forEach((match, n) => {
    const body = source.slice(match.index, classes[n + 1]?.index ?? source.length);
    const literal = /super\(\s*'([A-Z_]+)'/.exec(body);
    // A class whose code is a constructor argument declares the codes it takes: `code: 'OOM' | 'WRONGTYPE'`.
    const union = /constructor\(\s*code:([^,]+),/.exec(body);
    const codes = literal ? [literal[1]!] : [...(union?.[1] ?? '').matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
    declared.set(match[1]!, codes);
  });
  return declared;
}

/** The README's "### Errors" table: class name -> the codes in its code column. */
function readmeTable(): Map<string, string[]> {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const section = readme.slice(readme.indexOf('\n### Errors\n'));
  const table = section.slice(0, section.indexOf('\n###', 1));
  const rows = new Map<string, string[]>();
  for (const line of table.split('\n')) {
    const cells = /^\| `(\w+)` \| ([^|]+) \|/.exec(line);
    if (cells)
      rows.set(
        cells[1]!,
        [...cells[2]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!),
      );
  }
  return rows;
}

describe('README error table', () => {
  it('lists every exported SluiceError subclass with the code it raises', () => {
    const declared = declaredErrors();
    expect(declared.size).toBeGreaterThan(20);
    const exported = new Set<string>();
    for (const entry of [main, outbox, service, dashboard]) {
      for (const [name, value] of Object.entries(entry)) {
        if (typeof value === 'function' && value.prototype instanceof SluiceError) exported.add(name);
      }
    }
    // Every error a user can meet is exported from one of the entry points, and read from errors.ts.
    expect([...exported].sort()).toEqual([...declared.keys()].sort());
    for (const [name, codes] of declared) expect(codes.length, `code of ${name}`).toBeGreaterThan(0);

    const table = readmeTable();
    expect(Object.fromEntries(table)).toEqual(Object.fromEntries(declared));
  });

  it('the codes read from the source are the ones the errors carry', () => {
    expect(new main.QueueFullError('q', 1).code).toBe('QUEUE_FULL');
    expect(new main.IdempotencyKeyError('m', 'threw').code).toBe('INVALID_IDEMPOTENCY_KEY');
    expect(new service.OutboxNotConfiguredError().code).toBe(declaredErrors().get('OutboxNotConfiguredError')![0]);
    expect(new main.RedisCommandError('OOM', 'k', 'op', { cause: null }).code).toBe('OOM');
  });
});
