/**
 * A job's status as every process sees it, read from its hash `{prefix:scheduler/}:job:<name>` (written
 * only by the scheduler scripts). Times are ms since the epoch, by the Redis server's clock.
 */
export interface JobStatus {
  name: string;
  /** `every 10000 ms` or `cron <expression> (<timezone>)`, as the last process that registered it gave it */
  schedule: string | null;
  /** false when every process runs every tick (oncePerTick: false) */
  oncePerTick: boolean;
  paused: boolean;
  /** `idle` before the first run; `running`; or how the last run ended */
  state: 'idle' | 'running' | 'succeeded' | 'failed';
  /** the next tick (for oncePerTick jobs, the one the processes will claim) */
  nextRunAt: number | null;
  /** the tick the last run was for */
  lastTick: number | null;
  lastStartedAt: number | null;
  lastFinishedAt: number | null;
  lastDurationMs: number | null;
  /** what the last successful run's handler returned (JSON round trip; undefined when it returned nothing) */
  lastResult: unknown;
  /** the error message of the last run, when it failed */
  lastError: string | null;
  /** runs started so far; also the fence of the latest run */
  runCount: number;
  failureCount: number;
  /** the scheduler instance that started the last run */
  lastInstance: string | null;
}

const STATES = new Set<JobStatus['state']>(['running', 'succeeded', 'failed']);
/** results are stored for display; a bigger one is replaced by a note */
export const MAX_RESULT_CHARS = 10_000;

function numberOrNull(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

export function decodeStatus(name: string, hash: Record<string, string>): JobStatus {
  let lastResult: unknown;
  if (hash.lastResult) {
    try {
      lastResult = JSON.parse(hash.lastResult);
    } catch {
      lastResult = hash.lastResult;
    }
  }
  return {
    name,
    schedule: hash.schedule ?? null,
    oncePerTick: hash.mode !== 'local',
    paused: hash.paused === '1',
    state: STATES.has(hash.state as JobStatus['state']) ? (hash.state as JobStatus['state']) : 'idle',
    nextRunAt: numberOrNull(hash.nextRunAt),
    lastTick: numberOrNull(hash.lastTick),
    lastStartedAt: numberOrNull(hash.lastStartedAt),
    lastFinishedAt: numberOrNull(hash.lastFinishedAt),
    lastDurationMs: numberOrNull(hash.lastDurationMs),
    lastResult,
    lastError: hash.lastError ?? null,
    runCount: numberOrNull(hash.runCount) ?? 0,
    failureCount: numberOrNull(hash.failureCount) ?? 0,
    lastInstance: hash.lastInstance ?? null,
  };
}

/** The handler's return value as stored JSON: '' for none, a note when it cannot be stored. */
export function encodeResult(value: unknown): string {
  if (value === undefined) return '';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    return JSON.stringify(`<result not JSON-serialisable: ${(error as Error).message}>`);
  }
  if (json === undefined) return '';
  if (json.length > MAX_RESULT_CHARS) return JSON.stringify(`<result of ${json.length} characters not stored>`);
  return json;
}
