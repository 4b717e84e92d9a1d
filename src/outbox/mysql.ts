import type { Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import { MissingDependencyError, OutboxDatabaseError, SluiceError, ValidationError } from '../errors.js';
import { describeValue } from '../validate.js';

/**
 * The outbox's MySQL side: the pool (the caller's, or one opened from a URL with mysql2 imported only
 * then), and the mapping of mysql2's errors to OutboxDatabaseError.
 */

function isPromisePool(value: unknown): value is Pool {
  const pool = value as Partial<Pool> | null;
  return (
    typeof pool === 'object' &&
    pool !== null &&
    typeof pool.getConnection === 'function' &&
    typeof pool.query === 'function' &&
    typeof pool.end === 'function'
  );
}

/** A pool from the `mysql` option; `owned` when the outbox opened it and so ends it on close. */
/** A URL given as `mysql` must be a mysql:// URL; checked when the outbox is made, before any connection. */
export function checkMysqlUrl(option: unknown): void {
  if (typeof option !== 'string') return;
  let url: URL | null;
  try {
    url = new URL(option);
  } catch {
    url = null;
  }
  if (!url || url.protocol !== 'mysql:') {
    const shown = option.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
    throw new ValidationError(
      'mysql',
      `mysql must be a mysql://user:password@host:port/database URL (or a mysql2 Pool or pool options), got ${JSON.stringify(shown)}`,
    );
  }
}

export async function resolvePool(option: unknown): Promise<{ pool: Pool; owned: boolean }> {
  // A callback-style pool (mysql2's createPool) offers its promise wrapper.
  const wrapped = option as { promise?: unknown } | null;
  if (typeof wrapped === 'object' && wrapped !== null && typeof wrapped.promise === 'function') {
    const promised = (wrapped.promise as () => unknown).call(wrapped);
    if (isPromisePool(promised)) return { pool: promised, owned: false };
  }
  if (isPromisePool(option)) return { pool: option, owned: false };
  if (typeof option !== 'string' && (typeof option !== 'object' || option === null || Array.isArray(option))) {
    throw new ValidationError(
      'mysql',
      `mysql must be a mysql2/promise Pool, a mysql:// URL or mysql2 pool options, got ${describeValue(option)}`,
    );
  }
  let mysql: typeof import('mysql2/promise');
  try {
    mysql = await import('mysql2/promise');
  } catch (error) {
    throw new MissingDependencyError('mysql2', 'the outbox (given a URL or pool options)', { cause: error });
  }
  const createPool = mysql.createPool ?? (mysql as unknown as { default: typeof mysql }).default.createPool;
  const pool = typeof option === 'string' ? createPool(option) : createPool(option as PoolOptions);
  return { pool, owned: true };
}

/** Errors after which the connection cannot be trusted: mysql2 marks them fatal (lost, killed, protocol). */
export function isFatal(error: unknown): boolean {
  return (error as { fatal?: unknown } | null)?.fatal === true;
}

const HINTS: Record<string, string> = {
  ER_NO_SUCH_TABLE: 'run outbox.migrate() first',
  ER_DUP_ENTRY: 'an event with this id is already in the outbox; give each event its own id',
  ER_LOCK_DEADLOCK: 'the transaction was rolled back; the relay retries by itself',
  ER_LOCK_WAIT_TIMEOUT: 'the transaction was rolled back; the relay retries by itself',
  PROTOCOL_CONNECTION_LOST: 'the connection to the server was lost; the pool opens a new one',
  ECONNREFUSED: 'nothing listens at the MySQL address; check the URL and that the server runs',
};

/** A mysql2 error as an OutboxDatabaseError naming the table and the operation; SluiceErrors pass unchanged. */
export function databaseError(table: string, operation: string, error: unknown, hint?: string): SluiceError {
  if (error instanceof SluiceError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return new OutboxDatabaseError(table, operation, {
    cause: error,
    hint: hint ?? (typeof code === 'string' ? HINTS[code] : undefined),
  });
}

/** Returns a connection to the pool, or drops it when an error left it unusable. */
export function giveBack(connection: PoolConnection, broken: boolean): void {
  if (broken) connection.destroy();
  else connection.release();
}
