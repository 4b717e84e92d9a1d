/** What test/chaos/harness.ts tells a worker process (test/chaos/worker.ts), as JSON in CHAOS_WORKER. */
export interface WorkerConfig {
  role: 'queue' | 'bus' | 'publisher' | 'locks';
  url: string;
  prefix: string;
  record: string;
  /** queue: queue name; bus/publisher: bus name; locks: lock name */
  name: string;
  /** bus: subscriber ids this process consumes */
  subscribers?: string[];
  concurrency?: number;
  visibilityMs?: number;
  handlerTimeoutMs?: number;
  /** chance that an attempt throws, and that it hangs past the handler timeout */
  throwRate?: number;
  hangRate?: number;
  /** every message (event) whose n is a multiple of this always throws, so it must end in the DLQ */
  poisonEvery?: number;
  maxRetries?: number;
  /** publisher: event numbers to publish, and events per second */
  from?: number;
  to?: number;
  rate?: number;
  /** locks: lease TTL */
  ttlMs?: number;
}

/** the backoff of every queue of the run: short, so that retries do not stretch the run */
export const RETRY = { baseMs: 5, capMs: 40 };
