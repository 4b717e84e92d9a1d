/**
 * The dashboard's page: Preact components over the JSON API of src/dashboard/server.ts, routed by the URL's
 * hash (#/queue/orders), polling what is on screen. Bundled by scripts/build-dashboard.mjs into one file.
 */
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function api<T>(path: string, body?: unknown): Promise<T> {
  const response = await fetch(`api/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const value = (await response.json()) as T & { error?: { code: string; message: string } };
  if (!response.ok) {
    throw new ApiError(value.error?.code ?? 'HTTP', value.error?.message ?? response.statusText, response.status);
  }
  return value;
}

/** Calls `load` now and every `everyMs`, keeping the last value and error; `reload` calls it at once. */
function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => {
    loadRef.current().then(
      (v) => {
        setValue(v);
        setError(null);
      },
      (e: Error) => setError(e),
    );
  }, []);
  useEffect(() => {
    setValue(null);
    reload();
    const timer = setInterval(reload, everyMs);
    return () => clearInterval(timer);
  }, deps);
  return { value, error, reload };
}

// ---------------------------------------------------------------- shapes (what the API returns)

interface QueueStats {
  name: string;
  ready: { critical: number; high: number; normal: number; low: number };
  inflight: number;
  delayed: number;
  deadLetters: number;
  partitionBacklog: number;
  paused: boolean;
  consumers: number;
  oldestReadyAgeMs: number | null;
  rateLimit: { max: number; windowMs: number } | null;
  counters: Record<string, number>;
  sentPerSecond?: number | null;
  ackedPerSecond?: number | null;
}
interface BusRow {
  name: string;
  subscriptions: number;
  activeSubscriptions: number;
  events: Record<string, number>;
}
interface Overview {
  prefix: string;
  complete: boolean;
  readOnly: boolean;
  outboxConfigured: boolean;
  queues: QueueStats[];
  buses: BusRow[];
  throughput: { at: number; sent: number; acked: number; failed: number }[];
  warnings: { queue: string; kind: string; message: string }[];
  outbox: { pending: number; failed: number; published: number; oldestPendingAgeMs: number } | { error: string } | null;
}
interface Message {
  id: string;
  type: string;
  payload: unknown;
  priority: number;
  attempts: number;
  maxRetries: number;
  createdAt: number;
  runAt: number | null;
  partitionKey: string | null;
  headers?: Record<string, string>;
}
interface Peeked {
  id: string;
  state: State;
  message: Message | null;
  raw: string | null;
  lastError: string | null;
  at: number | null;
}
type State = 'ready' | 'delayed' | 'inflight' | 'dead';

// ---------------------------------------------------------------- formatting

function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

function when(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '-';
}

function short(value: unknown, max = 80): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function plural(count: number, one: string): string {
  return `${count} ${one}${count === 1 ? '' : 's'}`;
}

function readyTotal(stats: QueueStats): number {
  const { critical, high, normal, low } = stats.ready;
  return critical + high + normal + low;
}

const PRIORITY = ['', 'low', 'normal', 'high', 'critical'];

// ---------------------------------------------------------------- routing

function useRoute(): string[] {
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part; // a hand-typed malformed escape: shown as typed, not a crash
    }
  };
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decode);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

const link = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join('/')}`;

// ---------------------------------------------------------------- shared pieces

interface Notice {
  kind: 'ok' | 'error';
  text: string;
}

let notify: (notice: Notice) => void = () => undefined;

/** Runs an action, shows its outcome, then refreshes. */
async function act(label: string, path: string, body: unknown, after?: () => void): Promise<void> {
  try {
    const result = await api<Record<string, unknown>>(path, body);
    notify({ kind: 'ok', text: `${label}: ${JSON.stringify(result)}` });
  } catch (error) {
    notify({ kind: 'error', text: `${label} refused: ${(error as Error).message}` });
  }
  after?.();
}

function ErrorBox({ error }: { error: Error | null }) {
  if (!error) return null;
  if (error instanceof ApiError && error.code === 'UNAUTHORIZED') return <TokenForm message={error.message} />;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

function TokenForm({ message }: { message: string }) {
  const [token, setToken] = useState('');
  return (
    <form
      class="card token"
      onSubmit={(event) => {
        event.preventDefault();
        location.href = `./?token=${encodeURIComponent(token)}`;
      }}
    >
      <p>{message}</p>
      <input
        type="password"
        placeholder="token"
        value={token}
        onInput={(e) => setToken(e.currentTarget.value)}
        aria-label="token"
      />
      <button type="submit">Open</button>
    </form>
  );
}

function Table(props: {
  headers: string[];
  rows: (JSX.Element | string | number)[][];
  testid?: string;
  empty?: string;
}) {
  return (
    <table data-testid={props.testid}>
      <thead>
        <tr>
          {props.headers.map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.length === 0 ? (
          <tr>
            <td colSpan={props.headers.length} class="empty">
              {props.empty ?? 'none'}
            </td>
          </tr>
        ) : (
          props.rows.map((row, n) => (
            <tr key={n}>
              {row.map((cell, m) => (
                <td key={m}>{cell}</td>
              ))}
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

function Chart({ points }: { points: Overview['throughput'] }) {
  const width = 640;
  const height = 140;
  if (points.length < 2) return <p class="muted">The chart fills in as the page stays open (one point every 2 s).</p>;
  const max = Math.max(1, ...points.flatMap((p) => [p.sent, p.acked, p.failed]));
  const t0 = points[0]!.at;
  const span = Math.max(1, points[points.length - 1]!.at - t0);
  const line = (key: 'sent' | 'acked' | 'failed') =>
    points
      .map((p) => `${(((p.at - t0) / span) * width).toFixed(1)},${(height - (p[key] / max) * height).toFixed(1)}`)
      .join(' ');
  const last = points[points.length - 1]!;
  return (
    <figure class="chart" data-testid="chart" data-points={points.length}>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label="throughput">
        <polyline class="sent" points={line('sent')} />
        <polyline class="acked" points={line('acked')} />
        <polyline class="failed" points={line('failed')} />
      </svg>
      <figcaption>
        per second, last {ago(span)} (peak {max}): <span class="sent">sent {last.sent}</span>{' '}
        <span class="acked">acked {last.acked}</span> <span class="failed">failed {last.failed}</span>
      </figcaption>
    </figure>
  );
}

// ---------------------------------------------------------------- overview

function OverviewPage({ overview }: { overview: Overview }) {
  const outbox = overview.outbox;
  return (
    <section>
      <h1>
        Overview <small>prefix {overview.prefix}</small>
      </h1>
      {!overview.complete && (
        <p class="muted">
          The discovery scan stopped at its key limit: queues written before the registry may be missing.
        </p>
      )}
      {overview.warnings.length > 0 && (
        <ul class="warnings" data-testid="warnings">
          {overview.warnings.map((w) => (
            <li key={w.queue + w.kind} class={w.kind}>
              <a href={link('queue', w.queue)}>{w.queue}</a>: {w.message}
            </li>
          ))}
        </ul>
      )}
      <h2>Throughput</h2>
      <Chart points={overview.throughput} />
      <h2>Queues</h2>
      <Table
        testid="queues"
        headers={[
          'queue',
          'ready',
          'c/h/n/l',
          'in flight',
          'delayed',
          'DLQ',
          'oldest',
          'consumers',
          'paused',
          'sent/s',
          'acked/s',
        ]}
        rows={overview.queues.map((q) => [
          <a href={link('queue', q.name)}>{q.name}</a>,
          readyTotal(q),
          `${q.ready.critical}/${q.ready.high}/${q.ready.normal}/${q.ready.low}`,
          q.inflight,
          q.delayed,
          q.deadLetters,
          ago(q.oldestReadyAgeMs),
          q.consumers,
          q.paused ? 'yes' : 'no',
          q.sentPerSecond ?? '-',
          q.ackedPerSecond ?? '-',
        ])}
        empty="no queues under this prefix"
      />
      <h2>Event buses</h2>
      <Table
        testid="buses"
        headers={['bus', 'subscriptions', 'active', 'published', 'delivered', 'failed']}
        rows={overview.buses.map((b) => [
          <a href={link('bus', b.name)}>{b.name}</a>,
          b.subscriptions,
          b.activeSubscriptions,
          b.events.published ?? 0,
          b.events.delivered ?? 0,
          b.events.failed ?? 0,
        ])}
        empty="no buses under this prefix"
      />
      {outbox && (
        <>
          <h2>
            <a href="#/outbox">Outbox</a>
          </h2>
          {'error' in outbox ? (
            <p class="error">{outbox.error}</p>
          ) : (
            <p data-testid="outbox-summary">
              pending {outbox.pending}, failed {outbox.failed}, lag {ago(outbox.oldestPendingAgeMs)}
            </p>
          )}
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- queue

const STATES: State[] = ['ready', 'delayed', 'inflight', 'dead'];
const STATE_NAMES: Record<State, string> = {
  ready: 'ready',
  delayed: 'delayed',
  inflight: 'in flight',
  dead: 'dead letters',
};
const PAGE = 50;
const COUNTER_NAMES: Record<string, string> = {
  sent: 'sent (total)',
  delivered: 'delivered (total)',
  acked: 'acked (total)',
  retried: 'retried (total)',
  deadLettered: 'dead-lettered (total)',
  reclaimed: 'reclaimed (total)',
  replayed: 'replayed (total)',
};

interface Filter {
  id: string;
  type: string;
  partitionKey: string;
  text: string;
}
const NO_FILTER: Filter = { id: '', type: '', partitionKey: '', text: '' };

function filterQuery(filter: Filter): string {
  return Object.entries(filter)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
}

function QueuePage({ name, bus, readOnly }: { name: string; bus?: string | undefined; readOnly: boolean }) {
  // A subscriber's queue is named by its bus: ?bus=<bus> on every call.
  const qs = bus ? `?bus=${encodeURIComponent(bus)}` : '';
  const amp = bus ? `&bus=${encodeURIComponent(bus)}` : '';
  const [state, setState] = useState<State>('ready');
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [shown, setShown] = useState<Peeked | null>(null);
  const [draft, setDraft] = useState<Filter>(NO_FILTER);
  const [search, setSearch] = useState<{
    filter: Filter;
    matches: Peeked[];
    cursor: number | null;
    scanned: number;
  } | null>(null);
  const detail = usePoll(
    () =>
      api<{ stats: QueueStats; consumers: { id: string; host: string; pid: number; lastSeenAt: number }[] }>(
        `queues/${encodeURIComponent(name)}${qs}`,
      ),
    3000,
    [name, bus],
  );
  const page = usePoll(
    () =>
      api<Peeked[]>(`queues/${encodeURIComponent(name)}/messages?state=${state}&offset=${offset}&limit=${PAGE}${amp}`),
    3000,
    [name, bus, state, offset],
  );
  const refresh = () => {
    detail.reload();
    page.reload();
    setSelected(new Set());
    if (search) void runSearch(search.filter, 0, true);
  };
  const base = `queues/${encodeURIComponent(name)}`;

  async function runSearch(filter: Filter, cursor: number, fresh: boolean) {
    const query = filterQuery(filter);
    if (query === '') {
      setSearch(null);
      return;
    }
    try {
      const found = await api<{ matches: Peeked[]; cursor: number | null; scanned: number }>(
        `${base}/search?state=${state}&cursor=${cursor}&${query}${amp}`,
      );
      setSearch((before) => ({
        filter,
        matches: fresh || !before ? found.matches : [...before.matches, ...found.matches],
        cursor: found.cursor,
        scanned: (fresh || !before ? 0 : before.scanned) + found.scanned,
      }));
    } catch (error) {
      notify({ kind: 'error', text: `search: ${(error as Error).message}` });
    }
  }

  const stats = detail.value?.stats;
  const rows = search ? search.matches : (page.value ?? []);
  const toggle = (id: string) =>
    setSelected((before) => {
      const next = new Set(before);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const ids = [...selected];
  const filterBody = search ? Object.fromEntries(Object.entries(search.filter).filter(([, v]) => v !== '')) : null;

  return (
    <section>
      <h1>
        {bus ? (
          <>
            Subscriber <span data-testid="queue-name">{name}</span> of bus <a href={link('bus', bus)}>{bus}</a>
          </>
        ) : (
          <>
            Queue <span data-testid="queue-name">{name}</span>
          </>
        )}{' '}
        {stats?.paused && <span class="badge">paused</span>}
      </h1>
      <ErrorBox error={detail.error} />
      {stats && (
        <div class="stats" data-testid="queue-stats">
          {(
            [
              ['ready', readyTotal(stats), 'stat-ready'],
              [
                'ready by priority c/h/n/l',
                `${stats.ready.critical}/${stats.ready.high}/${stats.ready.normal}/${stats.ready.low}`,
              ],
              ['in flight', stats.inflight, 'stat-inflight'],
              ['delayed', stats.delayed, 'stat-delayed'],
              ['dead letters', stats.deadLetters, 'stat-dead'],
              ['partition backlog', stats.partitionBacklog],
              ['oldest ready', ago(stats.oldestReadyAgeMs)],
              ['consumers', stats.consumers, 'stat-consumers'],
              ['rate limit', stats.rateLimit ? `${stats.rateLimit.max} per ${stats.rateLimit.windowMs} ms` : 'none'],
              ...Object.entries(stats.counters).map(([k, v]): [string, number] => [COUNTER_NAMES[k] ?? k, v]),
            ] as [string, string | number, string?][]
          ).map(([label, value, testid]) => (
            <div key={label}>
              <span class="label">{label}</span>
              <span class="value" data-testid={testid}>
                {value}
              </span>
            </div>
          ))}
        </div>
      )}
      {stats && !readOnly && (
        <div class="actions">
          {stats.paused ? (
            <button onClick={() => void act('resume', `${base}/resume${qs}`, {}, refresh)}>Resume</button>
          ) : (
            <button onClick={() => void act('pause', `${base}/pause${qs}`, {}, refresh)}>Pause</button>
          )}
          <RateLimitForm base={base} qs={qs} current={stats.rateLimit} after={refresh} />
        </div>
      )}
      {detail.value && detail.value.consumers.length > 0 && (
        <details>
          <summary>{plural(detail.value.consumers.length, 'consumer')}</summary>
          <Table
            headers={['consumer', 'host', 'pid', 'last seen']}
            rows={detail.value.consumers.map((c) => [c.id, c.host, c.pid, when(c.lastSeenAt)])}
          />
        </details>
      )}
      <nav class="tabs" role="tablist">
        {STATES.map((s) => (
          <button
            key={s}
            role="tab"
            aria-selected={s === state}
            class={s === state ? 'on' : ''}
            onClick={() => {
              setState(s);
              setOffset(0);
              setSelected(new Set());
              setSearch(null);
            }}
          >
            {STATE_NAMES[s]}
          </button>
        ))}
      </nav>
      <form
        class="search"
        data-testid="search"
        onSubmit={(event) => {
          event.preventDefault();
          setSelected(new Set());
          void runSearch(draft, 0, true);
        }}
      >
        {(['id', 'type', 'partitionKey', 'text'] as const).map((key) => (
          <input
            key={key}
            name={key}
            placeholder={key === 'partitionKey' ? 'partition key' : key === 'text' ? 'payload contains' : key}
            value={draft[key]}
            onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.value })}
          />
        ))}
        <button type="submit">Search {STATE_NAMES[state]}</button>
        {search && (
          <button
            type="button"
            onClick={() => {
              setDraft(NO_FILTER);
              setSearch(null);
            }}
          >
            Clear
          </button>
        )}
      </form>
      {search && (
        <p class="muted" data-testid="search-summary">
          {search.matches.length} found in {search.scanned} examined
          {search.cursor !== null ? ' (more to examine)' : ''}
          {search.cursor !== null && (
            <button onClick={() => void runSearch(search.filter, search.cursor!, false)}>Search on</button>
          )}
        </p>
      )}
      {!readOnly && (
        <div class="actions">
          {state === 'dead' && (
            <>
              <button
                disabled={ids.length === 0}
                onClick={() => void act('replay', `${base}/replay${qs}`, { ids }, refresh)}
              >
                Replay selected ({ids.length})
              </button>
              <button
                disabled={ids.length === 0}
                onClick={() =>
                  confirm(`Delete ${ids.length} dead letters for good?`) &&
                  void act('purge', `${base}/purge${qs}`, { ids }, refresh)
                }
              >
                Purge selected
              </button>
              {filterBody && (
                <>
                  <button onClick={() => void act('replay', `${base}/replay${qs}`, { filter: filterBody }, refresh)}>
                    Replay all matching
                  </button>
                  <button
                    onClick={() =>
                      confirm('Delete every dead letter matching the search for good?') &&
                      void act('purge', `${base}/purge${qs}`, { filter: filterBody }, refresh)
                    }
                  >
                    Purge all matching
                  </button>
                </>
              )}
            </>
          )}
          {state === 'delayed' && (
            <button
              disabled={ids.length === 0}
              onClick={() => void act('promote', `${base}/promote${qs}`, { ids }, refresh)}
            >
              Promote selected ({ids.length})
            </button>
          )}
        </div>
      )}
      <ErrorBox error={page.error} />
      <Table
        testid="messages"
        headers={[
          '',
          'id',
          'type',
          'priority',
          'attempts',
          'partition key',
          state === 'ready' ? 'created' : state === 'inflight' ? 'deadline' : state === 'dead' ? 'failed at' : 'due',
          state === 'dead' ? 'reason' : 'last error',
          'payload',
        ]}
        rows={rows.map((row) => [
          readOnly ? (
            ''
          ) : (
            <input
              type="checkbox"
              aria-label={`select ${row.id}`}
              checked={selected.has(row.id)}
              onChange={() => toggle(row.id)}
            />
          ),
          <button class="link" onClick={() => setShown(row)}>
            {row.id}
          </button>,
          row.message?.type || '-',
          row.message ? (PRIORITY[row.message.priority] ?? row.message.priority) : '?',
          row.message ? `${row.message.attempts}/${row.message.maxRetries + 1}` : '?',
          row.message?.partitionKey ?? '-',
          when(row.at ?? row.message?.createdAt),
          short(row.lastError ?? '-', 40),
          row.message ? short(row.message.payload, 60) : `(undecodable) ${short(row.raw ?? '', 40)}`,
        ])}
        empty={search ? 'no match' : `no ${STATE_NAMES[state]} messages`}
      />
      {!search && (
        <div class="pager">
          <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Previous
          </button>
          <span>{(page.value?.length ?? 0) === 0 ? 'none' : `${offset + 1}–${offset + page.value!.length}`}</span>
          <button disabled={(page.value?.length ?? 0) < PAGE} onClick={() => setOffset(offset + PAGE)}>
            Next
          </button>
        </div>
      )}
      {shown && <MessageDetail row={shown} close={() => setShown(null)} />}
    </section>
  );
}

function RateLimitForm(props: { base: string; qs: string; current: QueueStats['rateLimit']; after: () => void }) {
  const [max, setMax] = useState(String(props.current?.max ?? ''));
  const [windowMs, setWindowMs] = useState(String(props.current?.windowMs ?? 1000));
  return (
    <form
      class="inline"
      onSubmit={(event) => {
        event.preventDefault();
        void act(
          'rate limit',
          `${props.base}/rate-limit${props.qs}`,
          { limit: max === '' ? null : { max: Number(max), windowMs: Number(windowMs) } },
          props.after,
        );
      }}
    >
      <label>
        rate limit <input size={6} value={max} placeholder="none" onInput={(e) => setMax(e.currentTarget.value)} />
      </label>
      <label>
        per <input size={6} value={windowMs} onInput={(e) => setWindowMs(e.currentTarget.value)} /> ms
      </label>
      <button type="submit">Set</button>
    </form>
  );
}

/** The whole record as the page was given it (a bounded read): nothing is looked up again by id. */
function MessageDetail(props: { row: Peeked; close: () => void }) {
  const { row } = props;
  return (
    <aside class="detail" data-testid="message-detail">
      <button class="close" onClick={props.close} aria-label="close">
        ×
      </button>
      <h2>Message {row.id}</h2>
      <p class="muted">
        {STATE_NAMES[row.state]}
        {row.at
          ? `, ${row.state === 'inflight' ? 'deadline' : row.state === 'dead' ? 'failed at' : 'due'} ${when(row.at)}`
          : ''}
        {row.lastError ? `, ${row.state === 'dead' ? 'reason' : 'last error'}: ${row.lastError}` : ''}
      </p>
      <pre>{JSON.stringify(row.message ?? { undecodable: row.raw }, null, 2)}</pre>
    </aside>
  );
}

// ---------------------------------------------------------------- bus

interface BusDetail {
  name: string;
  stats: BusRow & { subscriptionsByPattern: Record<string, number> };
  subscriptions: {
    subscriberId: string;
    patterns: string[];
    filter: unknown;
    active: boolean;
    maxRetries: number;
    queue: QueueStats;
  }[];
  types: string[];
  typesComplete: boolean;
}

function BusPage({ name, readOnly }: { name: string; readOnly: boolean }) {
  const detail = usePoll(() => api<BusDetail>(`buses/${encodeURIComponent(name)}`), 3000, [name]);
  const [type, setType] = useState<string | null>(null);
  const history = usePoll(
    () =>
      type
        ? api<{ position: string; event: { id: string; type: string; data: unknown; timestamp: string } }[]>(
            `buses/${encodeURIComponent(name)}/history?type=${encodeURIComponent(type)}&limit=20`,
          )
        : Promise.resolve([]),
    5000,
    [name, type],
  );
  const value = detail.value;
  const base = `buses/${encodeURIComponent(name)}/subscriptions`;
  // The first type's recent history is shown at once; the buttons switch it.
  useEffect(() => {
    if (type === null && value && value.types.length > 0) setType(value.types[0]!);
  }, [value, type]);
  return (
    <section>
      <h1>Event bus {name}</h1>
      <ErrorBox error={detail.error} />
      {value && (
        <>
          <p>
            published {value.stats.events.published}, delivered {value.stats.events.delivered}, failed{' '}
            {value.stats.events.failed}, duplicates {value.stats.events.duplicates}
          </p>
          <h2>Subscriptions</h2>
          <Table
            testid="subscriptions"
            headers={['subscriber', 'patterns', 'filter', 'active', 'ready', 'in flight', 'DLQ', 'oldest', '']}
            rows={value.subscriptions.map((s) => [
              <a href={link('bus', name, 'subscriber', s.subscriberId)}>{s.subscriberId}</a>,
              s.patterns.join(' '),
              s.filter ? short(s.filter, 60) : '-',
              s.active ? 'yes' : 'paused',
              readyTotal(s.queue),
              s.queue.inflight,
              s.queue.deadLetters,
              ago(s.queue.oldestReadyAgeMs),
              readOnly ? (
                ''
              ) : (
                <button
                  onClick={() =>
                    void act(
                      s.active ? 'pause' : 'resume',
                      `${base}/${encodeURIComponent(s.subscriberId)}/${s.active ? 'pause' : 'resume'}`,
                      {},
                      detail.reload,
                    )
                  }
                >
                  {s.active ? 'Pause' : 'Resume'}
                </button>
              ),
            ])}
          />
          <h2>Recent history</h2>
          <p>
            {value.types.length === 0
              ? 'no history yet'
              : value.types.map((t) => (
                  <button key={t} class={t === type ? 'on' : ''} onClick={() => setType(t)}>
                    {t}
                  </button>
                ))}
          </p>
          {type && (
            <Table
              testid="history"
              headers={['position', 'id', 'timestamp', 'data']}
              rows={(history.value ?? []).map((h) => [
                h.position,
                h.event.id,
                h.event.timestamp,
                short(h.event.data, 80),
              ])}
            />
          )}
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- jobs, locks, outbox

interface Job {
  name: string;
  schedule: string | null;
  state: string;
  paused: boolean;
  nextRunAt: number | null;
  lastFinishedAt: number | null;
  runCount: number;
  failureCount: number;
  lastError: string | null;
}

function JobsPage({ readOnly }: { readOnly: boolean }) {
  const jobs = usePoll(() => api<Job[]>('jobs'), 3000, []);
  return (
    <section>
      <h1>Scheduler jobs</h1>
      <ErrorBox error={jobs.error} />
      <Table
        testid="jobs"
        headers={[
          'job',
          'schedule',
          'state',
          'paused',
          'next run',
          'last finished',
          'runs',
          'failures',
          'last error',
          '',
        ]}
        rows={(jobs.value ?? []).map((job) => [
          job.name,
          job.schedule ?? '-',
          job.state,
          job.paused ? 'yes' : 'no',
          when(job.nextRunAt),
          when(job.lastFinishedAt),
          job.runCount,
          job.failureCount,
          short(job.lastError ?? '-', 40),
          readOnly ? (
            ''
          ) : (
            <span class="buttons">
              {(job.paused ? ['resume', 'restart'] : ['pause', 'restart']).map((verb) => (
                <button
                  key={verb}
                  onClick={() => void act(verb, `jobs/${encodeURIComponent(job.name)}/${verb}`, {}, jobs.reload)}
                >
                  {verb}
                </button>
              ))}
            </span>
          ),
        ])}
        empty="no scheduler jobs under this prefix"
      />
    </section>
  );
}

function LocksPage() {
  const locks = usePoll(
    () => api<{ name: string; held: boolean; holder: string | null; ttlMs: number | null; fence: number }[]>('locks'),
    3000,
    [],
  );
  return (
    <section>
      <h1>Locks</h1>
      <ErrorBox error={locks.error} />
      <Table
        testid="locks"
        headers={['lock', 'held', 'holder', 'ttl', 'fence']}
        rows={(locks.value ?? []).map((lock) => [
          lock.name,
          lock.held ? 'yes' : 'no',
          lock.holder ?? '-',
          ago(lock.ttlMs),
          lock.fence,
        ])}
        empty="no locks under this prefix"
      />
    </section>
  );
}

interface OutboxDetail {
  table: string;
  pending: number;
  failed: number;
  published: number;
  oldestPendingAgeMs: number;
  failedRows: {
    eventId: string;
    type: string;
    aggregateType: string;
    aggregateId: string;
    attempts: number;
    lastError: string | null;
    ageMs: number;
  }[];
}

function OutboxPage({ readOnly }: { readOnly: boolean }) {
  const outbox = usePoll(() => api<OutboxDetail>('outbox'), 3000, []);
  const value = outbox.value;
  return (
    <section>
      <h1>Outbox {value && <small>table {value.table}</small>}</h1>
      <ErrorBox error={outbox.error} />
      {value && (
        <>
          <p data-testid="outbox-stats">
            pending {value.pending}, failed {value.failed}, published {value.published}, relay lag{' '}
            {ago(value.oldestPendingAgeMs)}
          </p>
          {!readOnly && value.failed > 0 && (
            <button onClick={() => void act('retry failed', 'outbox/retry-failed', {}, outbox.reload)}>
              Retry every failed row
            </button>
          )}
          <Table
            testid="outbox-failed"
            headers={['failed event', 'type', 'aggregate', 'attempts', 'age', 'last error', '']}
            rows={value.failedRows.map((row) => [
              row.eventId,
              row.type,
              `${row.aggregateType}/${row.aggregateId}`,
              row.attempts,
              ago(row.ageMs),
              short(row.lastError ?? '-', 50),
              readOnly ? (
                ''
              ) : (
                <button
                  onClick={() => void act('retry', 'outbox/retry-failed', { eventIds: [row.eventId] }, outbox.reload)}
                >
                  Retry
                </button>
              ),
            ])}
            empty="no failed rows"
          />
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- app

function App() {
  const route = useRoute();
  const overview = usePoll(() => api<Overview>('overview'), 2000, []);
  const [notice, setNotice] = useState<Notice | null>(null);
  notify = setNotice;
  // A notice belongs to the screen it was shown on.
  useEffect(() => setNotice(null), [route.join('/')]);
  const readOnly = overview.value?.readOnly ?? true;
  const [page, name, sub, subscriber] = route;
  let body: JSX.Element;
  if (overview.error && !overview.value) body = <ErrorBox error={overview.error} />;
  else if (page === 'queue' && name) body = <QueuePage key={name} name={name} readOnly={readOnly} />;
  else if (page === 'bus' && name && sub === 'subscriber' && subscriber)
    body = <QueuePage key={`${name}/${subscriber}`} name={subscriber} bus={name} readOnly={readOnly} />;
  else if (page === 'bus' && name) body = <BusPage key={name} name={name} readOnly={readOnly} />;
  else if (page === 'jobs') body = <JobsPage readOnly={readOnly} />;
  else if (page === 'locks') body = <LocksPage />;
  else if (page === 'outbox') body = <OutboxPage readOnly={readOnly} />;
  else body = overview.value ? <OverviewPage overview={overview.value} /> : <p class="muted">loading…</p>;
  return (
    <>
      <header>
        <a class="brand" href="#/">
          sluice
        </a>
        <a href="#/">Overview</a>
        <a href="#/jobs">Jobs</a>
        <a href="#/locks">Locks</a>
        {overview.value?.outboxConfigured && <a href="#/outbox">Outbox</a>}
        {readOnly && overview.value && (
          <span class="badge" data-testid="read-only">
            read-only
          </span>
        )}
      </header>
      {notice && (
        <p class={`notice ${notice.kind}`} role="status" data-testid="notice" onClick={() => setNotice(null)}>
          {notice.text}
        </p>
      )}
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
