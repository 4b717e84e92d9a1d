/**
 * Every SQL statement of the outbox, in one place (as graphile-worker keeps src/sql/). Statements are built
 * once per table; values always travel as `?` placeholders, never inside the text. Times are the server's
 * (NOW(3)), so relays on machines with different clocks agree on what is due.
 */

/** The outbox's three states; FAILED and PENDING rows hold back the later rows of their aggregate. */
export const STATUS = { pending: 'PENDING', published: 'PUBLISHED', failed: 'FAILED' } as const;

/** An aggregate as the claim statements match it: (aggregate_type, aggregate_id). */
export interface AggregateKey {
  aggregateType: string;
  aggregateId: string;
}

export function outboxSql(table: string) {
  const t = `\`${table}\``;
  /** `(aggregate_type = ? AND aggregate_id = ?) OR ...`: an OR of index prefixes, which both servers range-scan */
  const anyAggregate = (count: number) =>
    `(${Array.from({ length: count }, () => '(aggregate_type = ? AND aggregate_id = ?)').join(' OR ')})`;
  const eventColumns =
    'id, event_id, aggregate_type, aggregate_id, event_type, CAST(payload AS CHAR) AS payload, ' +
    'CAST(metadata AS CHAR) AS metadata, CAST(headers AS CHAR) AS headers, attempts';

  return {
    version: 'SELECT VERSION() AS version',

    /** Serialises migrations of one table across processes (a named lock of the server, not a row lock). */
    lockMigration: 'SELECT GET_LOCK(?, ?) AS locked',
    unlockMigration: 'SELECT RELEASE_LOCK(?) AS released',

    // Indexes: `claim` walks pending rows in id order; `aggregate` answers "is there an earlier unpublished
    // row of this aggregate" and reads an aggregate's run; `published` finds rows old enough to delete.
    // utf8mb4_bin: aggregate ids compare byte for byte, as the partition keys built from them do in Redis.
    createTable: `CREATE TABLE IF NOT EXISTS ${t} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  event_id VARCHAR(100) NOT NULL,
  aggregate_type VARCHAR(100) NOT NULL,
  aggregate_id VARCHAR(255) NOT NULL,
  event_type VARCHAR(200) NOT NULL,
  payload JSON NOT NULL,
  metadata JSON NOT NULL,
  headers JSON NOT NULL,
  status ENUM('PENDING', 'PUBLISHED', 'FAILED') NOT NULL DEFAULT 'PENDING',
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  published_at DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY event_id (event_id),
  KEY claim (status, id),
  KEY aggregate (aggregate_type, aggregate_id, status, id),
  KEY published (status, published_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,

    insert: (rows: number) =>
      `INSERT INTO ${t} (event_id, aggregate_type, aggregate_id, event_type, payload, metadata, headers) VALUES ` +
      Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', '),

    /**
     * The relay's transactions read committed data and take no gap locks, so a claim never blocks the
     * INSERTs of writers, and each statement sees what other relays committed just before it.
     */
    readCommitted: 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED',

    /**
     * Step 1 of a claim: lock the first unpublished row of up to `?` aggregates whose first row is due.
     * Holding that row is holding its aggregate: no other relay takes a later row of it while an earlier
     * one is unpublished. The subquery is a plain (non-locking) read, so a head locked by another relay
     * still counts as unpublished and hides the rows behind it.
     */
    claimHeads: `SELECT o.id, o.aggregate_type, o.aggregate_id FROM ${t} o
WHERE o.status = 'PENDING' AND o.next_attempt_at <= NOW(3)
  AND NOT EXISTS (
    SELECT 1 FROM ${t} e
    WHERE e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id
      AND e.status IN ('PENDING', 'FAILED') AND e.id < o.id)
ORDER BY o.id LIMIT ? FOR UPDATE SKIP LOCKED`,

    /** Step 2: lock the pending rows of the claimed aggregates (their heads included), oldest first. */
    lockRuns: (aggregates: number) => `SELECT ${eventColumns}, next_attempt_at <= NOW(3) AS due FROM ${t}
WHERE status = 'PENDING' AND ${anyAggregate(aggregates)}
ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,

    /**
     * Step 3: a plain read of every unpublished row of those aggregates up to the last locked one, locked
     * by anybody or nobody. A run is published only as far as it has no gap: a row missing from step 2
     * (locked elsewhere, not due, FAILED) ends its aggregate's run.
     */
    readRuns: (aggregates: number) => `SELECT id, aggregate_type, aggregate_id FROM ${t}
WHERE status IN ('PENDING', 'FAILED') AND ${anyAggregate(aggregates)} AND id <= ?
ORDER BY id`,

    markPublished: `UPDATE ${t} SET status = 'PUBLISHED', published_at = NOW(3), attempts = attempts + 1 WHERE id IN (?)`,

    /** A refused publish: the caller computed the attempt count, the state and the backoff. */
    markAttempt: `UPDATE ${t} SET attempts = ?, status = ?, next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND, last_error = ?
WHERE id = ?`,

    retryFailed: `UPDATE ${t} SET status = 'PENDING', attempts = 0, next_attempt_at = NOW(3) WHERE status = 'FAILED'`,
    retryFailedIds: `UPDATE ${t} SET status = 'PENDING', attempts = 0, next_attempt_at = NOW(3)
WHERE status = 'FAILED' AND event_id IN (?)`,
    discardFailedIds: `DELETE FROM ${t} WHERE status = 'FAILED' AND event_id IN (?)`,

    listFailed: `SELECT event_id, aggregate_type, aggregate_id, event_type, attempts, last_error,
  TIMESTAMPDIFF(MICROSECOND, created_at, NOW(3)) DIV 1000 AS age_ms
FROM ${t} WHERE status = 'FAILED' ORDER BY id LIMIT ?`,

    /** One bounded batch of cleanup; the job repeats it until a batch comes back short. */
    deletePublished: `DELETE FROM ${t} WHERE status = 'PUBLISHED' AND published_at < NOW(3) - INTERVAL ? MICROSECOND
ORDER BY published_at LIMIT ?`,

    countByStatus: `SELECT status, COUNT(*) AS count FROM ${t} GROUP BY status`,
    oldestPending: `SELECT TIMESTAMPDIFF(MICROSECOND, created_at, NOW(3)) DIV 1000 AS age_ms FROM ${t}
WHERE status = 'PENDING' ORDER BY id LIMIT 1`,
  };
}

export type OutboxSql = ReturnType<typeof outboxSql>;

/** The values of `anyAggregate(n)`, in order. */
export function aggregateParams(aggregates: readonly AggregateKey[]): string[] {
  return aggregates.flatMap((a) => [a.aggregateType, a.aggregateId]);
}
