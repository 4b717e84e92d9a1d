import { OutboxUnsupportedServerError } from '../errors.js';

/** The first server versions with `SELECT ... FOR UPDATE SKIP LOCKED`. */
export const MIN_MARIADB = [10, 6] as const;
export const MIN_MYSQL = [8, 0, 1] as const;

/**
 * Checks a `SELECT VERSION()` string (`10.11.6-MariaDB-0+deb12u1`, `8.0.36`, `5.7.44-log`) for SKIP LOCKED
 * support and throws OutboxUnsupportedServerError when the server is older or unrecognised.
 */
export function checkServerVersion(version: string): { server: 'MariaDB' | 'MySQL'; version: number[] } {
  // Some MariaDB builds announce themselves as "5.5.5-10.x.y-MariaDB" for old clients' sake.
  const text = String(version).replace(/^5\.5\.5-/, '');
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!match) throw new OutboxUnsupportedServerError(String(version));
  const parts = match.slice(1, 4).map(Number);
  const mariadb = /mariadb/i.test(text);
  const minimum: readonly number[] = mariadb ? MIN_MARIADB : MIN_MYSQL;
  for (let n = 0; n < minimum.length; n++) {
    if (parts[n]! > minimum[n]!) break;
    if (parts[n]! < minimum[n]!) throw new OutboxUnsupportedServerError(String(version));
  }
  return { server: mariadb ? 'MariaDB' : 'MySQL', version: parts };
}
