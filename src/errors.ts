/**
 * Every error sluice raises is a SluiceError with a stable `code`; catch the class or compare the code.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An argument was refused before anything was written to Redis. `field` names the argument
 * (`payload`, `priority`, `delayMs`, `queue name` ...).
 */
export class ValidationError extends SluiceError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
    this.field = field;
  }
}

/**
 * ack, nack or extend named a delivery that is no longer in flight under that receipt: its visibility
 * deadline passed and it was reclaimed (and maybe handed to another consumer), or it was already acked
 * or nacked. Nothing was changed.
 */
export class StaleReceiptError extends SluiceError {
  readonly messageId: string;
  readonly receipt: string;
  constructor(messageId: string, receipt: string) {
    super(
      'STALE_RECEIPT',
      `message ${messageId} is not in flight under receipt ${receipt}: it was reclaimed after its visibility ` +
        `timeout, or already acked or nacked; nothing was changed`,
    );
    this.messageId = messageId;
    this.receipt = receipt;
  }
}

/**
 * An operation was attempted on a closed Queue, EventBus, Locks or Scheduler; also the reason of the
 * signal of a handler or job run still going when its consumer or scheduler closed.
 */
export class ClosedError extends SluiceError {
  constructor(what: string, detail?: string) {
    super('CLOSED', `${what} is closed${detail ? ` (${detail})` : ''}`);
  }
}

/** A consumer's handler ran past handlerTimeoutMs: its signal aborts with this and its message is nacked with it. */
export class HandlerTimeoutError extends SluiceError {
  constructor(ms: number) {
    super('HANDLER_TIMEOUT', `handler timed out after ${ms} ms (consumer option handlerTimeoutMs)`);
  }
}

/**
 * What a QueueFullError advises, by how the send met the full queue: `reject` (whenFull 'reject', the default),
 * `wait` (whenFull 'wait': it waited fullWaitMs in vain) or `request` (queue.request, which never waits).
 */
export type QueueFullMode = 'reject' | 'wait' | 'request';

const QUEUE_FULL_FIX: Record<QueueFullMode, string> = {
  reject: "Consume faster, raise maxLength, or give the queue whenFull: 'wait' (with fullWaitMs) to wait for room",
  wait: 'Consume faster (more consumers, or a higher concurrency), raise maxLength, or raise fullWaitMs to wait longer',
  request: 'A request never waits for room (whatever whenFull says): consume faster or raise maxLength',
};

/**
 * A send found its queue at `maxLength` (messages sent and not yet acked or dead-lettered): nothing was
 * written for it. With `whenFull: 'wait'` it is raised once the send has waited `fullWaitMs` for room.
 */
export class QueueFullError extends SluiceError {
  readonly queueName: string;
  readonly maxLength: number;
  constructor(queueName: string, maxLength: number, detail?: string, mode: QueueFullMode = 'reject') {
    super(
      'QUEUE_FULL',
      `queue ${queueName} is full: ${maxLength} messages are outstanding (not yet acked or dead-lettered; option ` +
        `maxLength ${maxLength})${detail ? `, ${detail}` : ''}; nothing was written. ${QUEUE_FULL_FIX[mode]}`,
    );
    this.queueName = queueName;
    this.maxLength = maxLength;
  }
}

/**
 * The `key` function of a consumer's idempotency guard threw, or returned something other than a non-empty
 * string of at most 512 bytes: the message is nacked with this error (its handler does not run) and retried
 * or dead-lettered as a failed handler would be.
 */
export class IdempotencyKeyError extends SluiceError {
  readonly messageId: string;
  constructor(messageId: string, detail: string, options?: { cause?: unknown }) {
    super(
      'INVALID_IDEMPOTENCY_KEY',
      `idempotency.key(message) for message ${messageId} ${detail}; it must return a non-empty string of at ` +
        `most 512 bytes (the message's business key, such as an order id), so the handler was not run`,
      options,
    );
    this.messageId = messageId;
  }
}

/**
 * queue.request: no reply came within `timeoutMs`. The request was withdrawn: its message was removed if no
 * consumer had taken it yet, and a reply that comes later is dropped. A handler already running still runs.
 */
export class RequestTimeoutError extends SluiceError {
  readonly queueName: string;
  readonly messageId: string;
  readonly timeoutMs: number;
  constructor(queueName: string, messageId: string, timeoutMs: number) {
    super(
      'REQUEST_TIMEOUT',
      `request ${messageId} on queue ${queueName} got no reply within ${timeoutMs} ms (option timeoutMs); it was ` +
        `withdrawn and a later reply is dropped. Check that a consumer runs on ${queueName}, or raise timeoutMs`,
    );
    this.queueName = queueName;
    this.messageId = messageId;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * queue.request: the handler failed on every attempt and the request's message was dead-lettered; `reason`
 * is its last error (the dead-letter reason).
 */
export class RequestFailedError extends SluiceError {
  readonly queueName: string;
  readonly messageId: string;
  readonly reason: string;
  constructor(queueName: string, messageId: string, reason: string) {
    super(
      'REQUEST_FAILED',
      `request ${messageId} on queue ${queueName} failed: its handler's last error was ${JSON.stringify(reason)}; ` +
        `the message is in the dead-letter queue (queue.deadLetters()); a replay runs it again but answers nobody`,
    );
    this.queueName = queueName;
    this.messageId = messageId;
    this.reason = reason;
  }
}

/**
 * A stored message record could not be decoded (edited by hand, or written by something else): dequeue
 * dead-letters such a message with this error's message as the reason; deadLetters() lists it with its raw text.
 */
export class CorruptRecordError extends SluiceError {
  constructor(reason: string) {
    super('CORRUPT_RECORD', `corrupt message record: ${reason}`);
  }
}

/**
 * extend or release named a lock that is not held under that token: its TTL ran out (and maybe another
 * holder took it), or it was already released. Nothing was changed.
 */
export class LockNotHeldError extends SluiceError {
  readonly lockName: string;
  readonly token: string;
  constructor(lockName: string, token: string) {
    super(
      'LOCK_NOT_HELD',
      `lock ${lockName} is not held under token ${token}: its TTL ran out or it was released; nothing was ` +
        `changed (use a longer ttlMs, extend sooner, or withLock, which extends automatically)`,
    );
    this.lockName = lockName;
    this.token = token;
  }
}

/** withLock could not acquire the lock within waitMs: another holder kept it. */
export class LockUnavailableError extends SluiceError {
  readonly lockName: string;
  constructor(lockName: string, waitMs: number) {
    super(
      'LOCK_UNAVAILABLE',
      `lock ${lockName} is held by another holder and was not freed within waitMs=${waitMs}; ` +
        `raise waitMs or try again later`,
    );
    this.lockName = lockName;
  }
}

/**
 * The reason of the AbortSignal that withLock (and a scheduler run) passes on: the lock was lost while
 * the function ran, because an extension was refused or Redis stayed unreachable until the TTL ran out.
 * Another holder may own it now; stop writing, or let the protected resource check the fencing token.
 */
export class LockLostError extends SluiceError {
  readonly lockName: string;
  constructor(lockName: string, options?: { cause?: unknown; detail?: string }) {
    super(
      'LOCK_LOST',
      `lock ${lockName} was lost while its holder was running; another holder may own it now` +
        (options?.detail ? ` (${options.detail})` : ''),
      options,
    );
    this.lockName = lockName;
  }
}

/** A scheduler operation named a job that no process has registered under this prefix. */
export class JobNotFoundError extends SluiceError {
  readonly jobName: string;
  constructor(jobName: string) {
    super(
      'JOB_NOT_FOUND',
      `scheduler job ${jobName} is not registered under this prefix; add it with scheduler.addJob() first ` +
        `(check the name and the prefix)`,
    );
    this.jobName = jobName;
  }
}

/** A scheduled job's handler ran past its timeoutMs; the run was recorded as failed with this error. */
export class JobTimeoutError extends SluiceError {
  readonly jobName: string;
  constructor(jobName: string, timeoutMs: number) {
    super('JOB_TIMEOUT', `scheduler job ${jobName} timed out after ${timeoutMs} ms (option timeoutMs)`);
    this.jobName = jobName;
  }
}

/**
 * pause, resume, replay or consume named a subscriber that is not subscribed to the bus. Nothing was
 * changed (a consumer is closed; see EventBus.consume).
 */
export class UnknownSubscriberError extends SluiceError {
  readonly bus: string;
  readonly subscriberId: string;
  constructor(bus: string, subscriberId: string, hint?: string) {
    super(
      'UNKNOWN_SUBSCRIBER',
      `event bus ${bus} has no subscriber ${subscriberId}; subscribe it first${hint ? ` (${hint})` : ''}`,
    );
    this.bus = bus;
    this.subscriberId = subscriberId;
  }
}

/** What went wrong with a connection, as far as the client could tell. */
export type ConnectionFailure =
  'refused' | 'dns' | 'tls' | 'auth' | 'protocol' | 'timeout' | 'lost' | 'closed' | 'failover' | 'cluster';

const FAILURE_TEXT: Record<ConnectionFailure, string> = {
  refused: 'the connection was refused: nothing listens there (check the port, and that Redis runs)',
  dns: 'the host name does not resolve (check the host in the URL)',
  tls: 'the TLS handshake failed (rediss:// needs a TLS port; redis:// a plain one)',
  auth: 'Redis refused the credentials (give the password in the URL: redis://:password@host:port, or user:password)',
  protocol:
    'something other than Redis answered there (its reply is not Redis protocol): check the port (3306 is MySQL, 80 and 443 HTTP) and the scheme',
  timeout:
    'no answer from Redis within the connect timeout (check the address and firewalls, or raise connectTimeoutMs)',
  lost: 'the connection was lost and not restored within the connect timeout',
  closed: 'the connection was closed by close() before the command was answered; it may or may not have run',
  failover:
    'the Redis Cluster was failing over (a master down, its slots moving: CLUSTERDOWN, TRYAGAIN or too many ' +
    'redirections); the command may or may not have run: call it again (every sluice call is safe to repeat)',
  cluster:
    'this server is a Redis Cluster node (it answered MOVED): pass an ioredis Cluster as the connection ' +
    "(new Cluster([{ host, port }])), not a redis:// URL or a single node's client",
};

/**
 * A durable send or publish (the `durability` option of a Queue or EventBus) was written on the master, but
 * Redis's WAIT saw only `acknowledged` of the `replicas` asked for within `timeoutMs` (or could not be asked:
 * `cause`). The write is not lost yet, but a failover now may lose it: it was not acknowledged. Sending
 * again with the same ids (`ids`: the message ids or event ids of the call) is safe: a queue writes nothing
 * for a sender-chosen id still live, a bus does not deliver an event id again within its dedup window.
 */
export class DurabilityError extends SluiceError {
  /** what was written: `queue orders`, `event bus events` */
  readonly target: string;
  /** the ids the call wrote (message ids, or event ids) */
  readonly ids: readonly string[];
  readonly replicas: number;
  readonly acknowledged: number;
  readonly timeoutMs: number;
  constructor(
    target: string,
    ids: readonly string[],
    durability: { replicas: number; timeoutMs: number },
    acknowledged: number,
    options?: { cause?: unknown },
  ) {
    const why =
      options?.cause === undefined
        ? `reached only ${acknowledged} of ${durability.replicas} replica(s) within ${durability.timeoutMs} ms`
        : `could not be confirmed on any replica (WAIT failed: ${options.cause instanceof Error ? options.cause.message : 'no reply'})`;
    const what =
      ids.length === 1
        ? `id ${ids[0]}`
        : `${ids.length} ids, ${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ' ...' : ''}`;
    super(
      'NOT_DURABLE',
      `${target}: the write (${what}) reached the master but ${why} (option durability); it may be lost if ` +
        `the master fails over now. Sending again with the same ids is safe (a live id is not written twice, ` +
        `an event id is not delivered twice within the dedup window); check that the replicas are up and in sync`,
      options,
    );
    this.target = target;
    this.ids = ids;
    this.replicas = durability.replicas;
    this.acknowledged = acknowledged;
    this.timeoutMs = durability.timeoutMs;
  }
}

/**
 * Redis could not be reached or refused the connection. `address` is host:port (or the socket path, or the
 * cluster's nodes); `failure` says why; `cause` is the client's own error when there was one.
 */
export class ConnectionError extends SluiceError {
  readonly address: string;
  readonly failure: ConnectionFailure;
  constructor(address: string, failure: ConnectionFailure, options?: { cause?: unknown; detail?: string }) {
    const detail = options?.detail ?? (options?.cause instanceof Error ? options.cause.message : undefined);
    super('CONNECTION', `Redis at ${address}: ${FAILURE_TEXT[failure]}${detail ? ` [${detail}]` : ''}`, options);
    this.address = address;
    this.failure = failure;
  }
}

/**
 * Redis refused a script's writes: `OOM` (maxmemory reached under a noeviction policy: free memory or raise
 * maxmemory; sluice needs noeviction, since an evicting policy would drop messages) or `WRONGTYPE` (a key of this
 * queue, bus, lock or job was overwritten by hand with another type: delete or rename it). `key` is the
 * base key (or first key) of the call and `operation` the script; a script refused for OOM wrote nothing.
 */
export class RedisCommandError extends SluiceError {
  readonly key: string;
  readonly operation: string;
  constructor(code: 'OOM' | 'WRONGTYPE', key: string, operation: string, options: { cause: unknown }) {
    const why =
      code === 'OOM'
        ? 'Redis is out of memory (maxmemory reached with a noeviction policy); nothing was written. ' +
          'Free memory, raise maxmemory, or drain the queue (keep maxmemory-policy noeviction: an evicting ' +
          'policy would drop messages and the memory of recent requests)'
        : 'a key under it holds the wrong type (overwritten by hand?); delete or rename that key';
    super(code, `${operation} on ${key} was refused: ${why}`, options);
    this.key = key;
    this.operation = operation;
  }
}

/** outbox.migrate() waited `waitS` seconds for another process's migration of the same table; run it again. */
export class OutboxMigrateBusyError extends SluiceError {
  readonly table: string;
  constructor(table: string, waitS: number) {
    super(
      'OUTBOX_MIGRATE_BUSY',
      `outbox ${table}: another process held the migration lock for ${waitS} s; run migrate() again`,
    );
    this.table = table;
  }
}

/**
 * The outbox needs `SELECT ... FOR UPDATE SKIP LOCKED` (MariaDB ≥ 10.6, MySQL ≥ 8.0.1) and the server is
 * older, or is not MySQL or MariaDB. Raised by outbox.migrate() and when a relay starts; nothing was written.
 */
export class OutboxUnsupportedServerError extends SluiceError {
  readonly serverVersion: string;
  constructor(serverVersion: string) {
    super(
      'OUTBOX_UNSUPPORTED_SERVER',
      `the outbox needs SELECT ... FOR UPDATE SKIP LOCKED, which server version ${JSON.stringify(serverVersion)} ` +
        `does not support: use MariaDB ≥ 10.6 or MySQL ≥ 8.0.1`,
    );
    this.serverVersion = serverVersion;
  }
}

/**
 * A statement of the outbox failed in MySQL/MariaDB. `table` is the outbox table, `operation` what the
 * outbox was doing (`claim`, `insert`, `migrate` ...), `sqlCode` the server's error code (`ER_NO_SUCH_TABLE`,
 * `ER_LOCK_DEADLOCK` ...) or the client's (`PROTOCOL_CONNECTION_LOST`); `cause` is mysql2's error. Inside
 * publishInTransaction the transaction was rolled back.
 */
export class OutboxDatabaseError extends SluiceError {
  readonly table: string;
  readonly operation: string;
  readonly sqlCode: string | undefined;
  constructor(table: string, operation: string, options: { cause: unknown; hint?: string }) {
    const cause = options.cause as { code?: unknown; message?: unknown } | undefined;
    const sqlCode = typeof cause?.code === 'string' ? cause.code : undefined;
    const detail = typeof cause?.message === 'string' ? cause.message : String(options.cause);
    super(
      'OUTBOX_DATABASE',
      `outbox ${table}: ${operation} failed: ${detail}${options.hint ? ` (${options.hint})` : ''}`,
      options,
    );
    this.table = table;
    this.operation = operation;
    this.sqlCode = sqlCode;
  }
}

/** A package that an optional part of sluice needs is not installed (`mysql2` for the outbox given a URL). */
export class MissingDependencyError extends SluiceError {
  readonly packageName: string;
  constructor(packageName: string, neededBy: string, options?: { cause?: unknown }) {
    super('MISSING_DEPENDENCY', `${neededBy} needs the package ${packageName}: npm install ${packageName}`, options);
    this.packageName = packageName;
  }
}

/**
 * A QueueService was used before initialize() (or after gracefulShutdown()), or QueueService.getInstance()
 * was called before QueueService.initialize(); `what` names the call, the message says what to do first.
 */
export class NotInitializedError extends SluiceError {
  readonly what: string;
  constructor(what: string, fix: string) {
    super('NOT_INITIALIZED', `${what}: the QueueService is not initialized; ${fix}`);
    this.what = what;
  }
}

/** publishEventWithTransaction was called on a QueueService initialized without `mysql`. */
export class OutboxNotConfiguredError extends SluiceError {
  constructor() {
    super(
      'OUTBOX_NOT_CONFIGURED',
      'publishEventWithTransaction needs the outbox: pass mysql (a mysql2/promise Pool or a mysql:// URL) to initialize()',
    );
  }
}

/**
 * QueueService.initialize() was called again with options other than those the process's instance was
 * initialized with: the second call would silently get the first service. `getInstance()` returns the one
 * there is; `await new QueueService().initialize(options)` makes a second, independent one.
 */
export class AlreadyInitializedError extends SluiceError {
  /** `singleton`: the call was the static QueueService.initialize() (the process's instance) */
  constructor(what: string, singleton = true) {
    super(
      'ALREADY_INITIALIZED',
      singleton
        ? `${what}: the QueueService is already initialized with other options; use QueueService.getInstance() ` +
            'for it, or `await new QueueService().initialize(options)` for a second, independent service'
        : `${what}: this QueueService is already initialized with other options; keep using it, or ` +
            '`await new QueueService().initialize(options)` for a second, independent service',
    );
  }
}

/**
 * The dashboard refused a request: `UNAUTHORIZED` (no token or a wrong one), `FORBIDDEN` (its authorize hook
 * said no), `READ_ONLY` (an action on a read-only dashboard), `CROSS_SITE` (a write from another site),
 * `UNSUPPORTED_MEDIA_TYPE` (an action without a JSON body) or `NOT_FOUND`; `DASHBOARD_ASSETS` when the page's
 * files are missing (a checkout not built). `status` is the HTTP status sent.
 */
export class DashboardError extends SluiceError {
  readonly status: number;
  constructor(
    code:
      | 'UNAUTHORIZED'
      | 'FORBIDDEN'
      | 'READ_ONLY'
      | 'CROSS_SITE'
      | 'UNSUPPORTED_MEDIA_TYPE'
      | 'NOT_FOUND'
      | 'DASHBOARD_ASSETS',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.status = DASHBOARD_STATUS[code];
  }
}

const DASHBOARD_STATUS = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  READ_ONLY: 403,
  CROSS_SITE: 403,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_FOUND: 404,
  DASHBOARD_ASSETS: 500,
} as const;
