/**
 * The dashboard's HTTP side: a handler for Node's http server (or Express, Fastify's raw request) that
 * serves the bundled page and a JSON API under the path it is mounted at. Security, in order, for every
 * request: authentication (the token, or the caller's `authorize`); for an action, read-only mode, then
 * cross-site checks (Sec-Fetch-Site, Origin, a JSON body); then the action, logged with who and what.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cluster, Redis } from 'ioredis';
import { closeOwned, resolveConnection } from '../connection.js';
import { DashboardError, JobNotFoundError, SluiceError, UnknownSubscriberError, ValidationError } from '../errors.js';
import type { Queue } from '../index.js';
import type { Outbox } from '../outbox/index.js';
import { DashboardData, PEEK_STATES, type SearchFilter } from './api.js';

/** What an authorize hook is asked about: reading anything, or one action. */
export type DashboardAction =
  | 'read'
  | 'queue.replay'
  | 'queue.purge'
  | 'queue.promote'
  | 'queue.pause'
  | 'queue.resume'
  | 'queue.rateLimit'
  | 'subscription.pause'
  | 'subscription.resume'
  | 'job.pause'
  | 'job.resume'
  | 'job.restart'
  | 'outbox.retryFailed';

/** One line of the action log. */
export interface DashboardLogEntry {
  time: string;
  /** what authorize returned as the user's name, `token` when the token let them in, else `anonymous` */
  who: string;
  /** the client's address */
  address: string | undefined;
  action: DashboardAction;
  /** the queue, bus, job or table acted on */
  target: string;
  /** the action's arguments (ids, filter, limit) */
  detail: unknown;
  outcome: 'done' | 'refused' | 'failed';
  /** what was done (how many replayed ...) or why it was refused or failed */
  result: unknown;
}

export interface DashboardOptions {
  /** an ioredis client (the dashboard uses it, the caller closes it) or a redis:// URL (the dashboard owns it) */
  connection: Redis | Cluster | string;
  /** the prefix the queues and buses were created with (default `sluice`) */
  prefix?: string;
  /** refuse every action on the server; reads only (default false) */
  readOnly?: boolean;
  /**
   * a secret every request must present: `Authorization: Bearer <token>`, or the cookie set by opening the
   * page once as `?token=<token>`
   */
  token?: string;
  /**
   * decides each request instead of (or after) the token: return false to refuse, true to allow, or a string
   * (the user's name) to allow and log under that name
   */
  authorize?: (request: IncomingMessage, action: DashboardAction) => boolean | string | Promise<boolean | string>;
  /** an Outbox (sluice/outbox) whose backlog and failed rows the dashboard shows and retries */
  outbox?: Outbox;
  /** where action log lines go (default: one JSON line each on stderr) */
  log?: (entry: DashboardLogEntry) => void;
  /** keys the discovery SCAN reads at most (default 10,000) */
  scanLimit?: number;
  /**
   * the Host headers the dashboard answers (`localhost:8080`, …); others get 403. serveDashboard sets the
   * loopback names when it runs on loopback with no token or authorize, so a DNS-rebinding page cannot reach
   * it. Default: any host.
   */
  allowedHosts?: readonly string[];
}

/** A request handler, usable as `http.createServer(handler)`, Express middleware or `app.use('/path', handler)`. */
export interface DashboardHandler {
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void;
  /** Closes what the dashboard opened (its Redis client when given a URL). */
  close(): Promise<void>;
  /** @internal serveDashboard on a port picked at listen time: the loopback Host names with that port */
  allowHosts(hosts: readonly string[]): void;
}

const OPTION_NAMES = new Set([
  'connection',
  'prefix',
  'readOnly',
  'token',
  'authorize',
  'outbox',
  'log',
  'scanLimit',
  'allowedHosts',
]);
const COOKIE = 'sluice_dashboard';
const MAX_BODY_BYTES = 64 * 1024;
const MAX_PAGE = 200;
/** Most dead letters one "replay/purge all matching" acts on. */
export const MAX_MATCHING = 10_000;

/** The bundled page: dist/dashboard, next to dist/src (the package), or under dist/ when run from the sources. */
const ASSETS =
  [new URL('../../dashboard/', import.meta.url), new URL('../../dist/dashboard/', import.meta.url)].find((folder) =>
    existsSync(new URL('app.js', folder)),
  ) ?? new URL('../../dashboard/', import.meta.url);
const ASSET_TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** The page's content security policy: nothing but this server's own script, style and API. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function loadAsset(name: string): Buffer {
  try {
    return readFileSync(new URL(name, ASSETS));
  } catch (error) {
    throw new DashboardError(
      'DASHBOARD_ASSETS',
      `the dashboard's ${name} is missing from ${ASSETS.pathname}: build it with npm run build`,
      { cause: error },
    );
  }
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  action: DashboardAction;
  run: (context: RequestContext, params: string[]) => Promise<{ result: unknown; target?: string; detail?: unknown }>;
}

interface RequestContext {
  url: URL;
  body: Record<string, unknown>;
  data: DashboardData;
}

export function createDashboard(options: DashboardOptions): DashboardHandler {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('options', 'createDashboard(options): give { connection, prefix }');
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) {
      throw new ValidationError(
        key,
        `createDashboard(options): unknown option ${key}; known: ${[...OPTION_NAMES].join(', ')}`,
      );
    }
  }
  const { readOnly = false, token, authorize, outbox, prefix = 'sluice' } = options;
  if (token !== undefined && (typeof token !== 'string' || token.length < 16)) {
    throw new ValidationError('token', 'token must be a string of at least 16 characters (a random secret)');
  }
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new ValidationError('authorize', 'authorize must be a function (request, action) => boolean | string');
  }
  if (typeof readOnly !== 'boolean') throw new ValidationError('readOnly', 'readOnly must be true or false');
  const scanLimit = options.scanLimit ?? 10_000;
  if (!Number.isSafeInteger(scanLimit) || scanLimit < 1) {
    throw new ValidationError('scanLimit', `scanLimit must be a whole number >= 1, got ${String(scanLimit)}`);
  }
  let allowedHosts = options.allowedHosts === undefined ? null : new Set(options.allowedHosts);
  const { client: resolved, owned } = resolveConnection(options.connection);
  const client = resolved;
  const data = new DashboardData(client, prefix, outbox, scanLimit);
  const log = options.log ?? ((entry) => process.stderr.write(`sluice dashboard: ${JSON.stringify(entry)}\n`));
  const tokenDigest = token === undefined ? null : digest(token);
  const index = pageHtml();
  const assets = new Map<string, Buffer>();
  const asset = (name: string) => {
    let body = assets.get(name);
    if (!body) assets.set(name, (body = loadAsset(name)));
    return body;
  };

  const routes = buildRoutes();

  async function identify(request: IncomingMessage, action: DashboardAction): Promise<string> {
    let who = 'anonymous';
    if (tokenDigest) {
      const presented = presentedToken(request);
      if (presented === null || !timingSafeEqual(digest(presented), tokenDigest)) {
        throw new DashboardError(
          'UNAUTHORIZED',
          'this dashboard needs its token: open it once as ?token=<token>, or send Authorization: Bearer <token>',
        );
      }
      who = 'token';
    }
    if (authorize) {
      const verdict = await authorize(request, action);
      if (verdict === false) {
        throw new DashboardError('FORBIDDEN', `not allowed: ${action} (refused by the dashboard's authorize)`);
      }
      if (typeof verdict === 'string' && verdict !== '') who = verdict;
    }
    return who;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    securityHeaders(response);
    const raw = request.url ?? '/';
    // `//host/...` or `/\host` would parse as another host (an open redirect, a path that escapes a proxy's rules).
    if (!raw.startsWith('/') || /^\/[/\\]/.test(raw)) {
      throw new DashboardError('NOT_FOUND', 'no page at that address: paths start with a single /');
    }
    if (allowedHosts && !allowedHosts.has(request.headers.host ?? '')) {
      throw new DashboardError(
        'FORBIDDEN',
        `this dashboard answers ${[...allowedHosts].join(', ')} only, not Host ${request.headers.host ?? '(none)'} ` +
          '(a page of another site reaching it through DNS rebinding); give it a token to serve other names',
      );
    }
    const url = new URL(`http://dashboard.invalid${raw}`);
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (method === 'GET' && (path === '/' || path === '')) {
      // Mounted under a path (Express's app.use('/ops', …)) and opened without the trailing slash: the page's
      // relative asset and API paths need it.
      const original = (request as { originalUrl?: string }).originalUrl?.split('?')[0];
      if (original && !original.endsWith('/')) {
        response.statusCode = 301;
        response.setHeader('Location', `/${original.replace(/^[/\\]+/, '')}/${url.search}`);
        response.end();
        return;
      }
      // ?token=… once: the token becomes an HttpOnly, SameSite=Strict cookie and leaves the address bar.
      const offered = url.searchParams.get('token');
      if (offered !== null && tokenDigest && timingSafeEqual(digest(offered), tokenDigest)) {
        const base = mountPath(request);
        const secure = isSecure(request) ? '; Secure' : '';
        response.statusCode = 303;
        response.setHeader(
          'Set-Cookie',
          `${COOKIE}=${encodeURIComponent(offered)}; HttpOnly; SameSite=Strict; Path=${base}${secure}`,
        );
        response.setHeader('Location', base);
        response.end();
        return;
      }
      // The page itself holds no data: without the token it loads and shows the API's refusal.
      send(response, 200, 'text/html; charset=utf-8', index);
      return;
    }
    if (method === 'GET' && path === '/favicon.ico') {
      response.statusCode = 204; // no icon: answered, so browsers do not log a failed request on every page
      response.end();
      return;
    }
    const assetName = /^\/assets\/([a-z]+\.(?:js|css))$/.exec(path)?.[1];
    if (method === 'GET' && assetName && ASSET_TYPES[assetName]) {
      response.setHeader('Cache-Control', 'no-cache');
      send(response, 200, ASSET_TYPES[assetName], asset(assetName));
      return;
    }
    if (!path.startsWith('/api/')) {
      throw new DashboardError('NOT_FOUND', `no page at ${path}: the dashboard serves /, /assets/ and /api/`);
    }
    let matched: { route: Route; params: string[] } | null = null;
    for (const route of routes) {
      const found = route.pattern.exec(path);
      if (found && route.method === method) {
        matched = { route, params: found.slice(1).map(decodeParam) };
        break;
      }
    }
    if (!matched) {
      throw new DashboardError('NOT_FOUND', `no API route ${method} ${path}`);
    }
    const { route, params } = matched;
    if (route.action === 'read') {
      await identify(request, route.action);
      const body = await readBody(request, false);
      const { result } = await route.run({ url, body, data }, params);
      json(response, 200, result);
      return;
    }
    const entry: DashboardLogEntry = {
      time: new Date().toISOString(),
      who: 'anonymous',
      address: request.socket?.remoteAddress,
      action: route.action,
      target: params[0] ?? '',
      detail: null,
      outcome: 'refused',
      result: null,
    };
    try {
      entry.who = await identify(request, route.action);
      if (readOnly) {
        throw new DashboardError('READ_ONLY', `${route.action} refused: this dashboard is read-only`);
      }
      checkSameOrigin(request);
      const body = await readBody(request, true);
      entry.detail = body;
      entry.outcome = 'failed';
      const { result, target } = await route.run({ url, body, data }, params);
      if (target) entry.target = target;
      entry.outcome = 'done';
      entry.result = result;
      json(response, 200, result);
    } catch (error) {
      entry.result = error instanceof Error ? error.message : String(error);
      if (error instanceof DashboardError) entry.outcome = 'refused';
      throw error;
    } finally {
      log(entry);
    }
  }

  const handler = ((request, response, next) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof SluiceError) {
        json(response, statusOf(error), { error: { code: error.code, message: error.message } });
        return;
      }
      if (next) {
        next(error);
        return;
      }
      json(response, 500, { error: { code: 'INTERNAL', message: 'the dashboard failed; see the server log' } });
      process.stderr.write(
        `sluice dashboard: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    });
  }) as DashboardHandler;
  handler.allowHosts = (hosts) => {
    allowedHosts = new Set(hosts);
  };
  handler.close = async () => {
    await data.close();
    if (owned) await closeOwned(resolved, 'the dashboard');
  };
  return handler;

  function buildRoutes(): Route[] {
    const q = '([^/]+)';
    const read = (pattern: string, run: Route['run']): Route => ({
      method: 'GET',
      pattern: new RegExp(`^/api${pattern}$`),
      action: 'read',
      run,
    });
    const act = (pattern: string, action: DashboardAction, run: Route['run']): Route => ({
      method: 'POST',
      pattern: new RegExp(`^/api${pattern}$`),
      action,
      run,
    });
    return [
      read('/overview', async ({ data }) => ({
        result: { ...(await data.overview()), readOnly, outboxConfigured: data.hasOutbox },
      })),
      read(`/queues/${q}`, async ({ data, url }, [name]) => ({
        result: await data.queueDetail(await data.resolve(name!, busParam(url))),
      })),
      read(`/queues/${q}/messages`, async ({ data, url }, [name]) => ({
        result: await data.messages(
          await data.resolve(name!, busParam(url)),
          stateParam(url),
          intParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
          intParam(url, 'limit', 50, 1, MAX_PAGE),
        ),
      })),
      read(`/queues/${q}/search`, async ({ data, url }, [name]) => ({
        result: await data.search(
          await data.resolve(name!, busParam(url)),
          stateParam(url),
          filterParams(url.searchParams),
          intParam(url, 'cursor', 0, 0, Number.MAX_SAFE_INTEGER),
          intParam(url, 'limit', 50, 1, MAX_PAGE),
        ),
      })),
      act(`/queues/${q}/replay`, 'queue.replay', async ({ data, body, url }, [name]) => {
        const queue = await data.resolve(name!, busParam(url));
        const replayed: string[] = [];
        for (const ids of batches(await selectedDeadLetters(data, queue, body))) {
          replayed.push(...(await queue.replayDeadLetters({ ids })));
        }
        return { result: { replayed: replayed.length, ids: replayed } };
      }),
      act(`/queues/${q}/purge`, 'queue.purge', async ({ data, body, url }, [name]) => {
        const queue = await data.resolve(name!, busParam(url));
        let purged = 0;
        for (const ids of batches(await selectedDeadLetters(data, queue, body))) {
          purged += await queue.purgeDeadLetters({ ids });
        }
        return { result: { purged } };
      }),
      act(`/queues/${q}/promote`, 'queue.promote', async ({ data, body, url }, [name]) => {
        const ids = idList(body.ids);
        return { result: { promoted: await (await data.resolve(name!, busParam(url))).promote({ ids }) } };
      }),
      act(`/queues/${q}/pause`, 'queue.pause', async ({ data, url }, [name]) => {
        await (await data.resolve(name!, busParam(url))).pause();
        return { result: { paused: true } };
      }),
      act(`/queues/${q}/resume`, 'queue.resume', async ({ data, url }, [name]) => {
        await (await data.resolve(name!, busParam(url))).resume();
        return { result: { paused: false } };
      }),
      act(`/queues/${q}/rate-limit`, 'queue.rateLimit', async ({ data, body, url }, [name]) => {
        if (
          !('limit' in body) ||
          (body.limit !== null && (typeof body.limit !== 'object' || Array.isArray(body.limit)))
        ) {
          throw new ValidationError(
            'limit',
            'rate-limit takes { "limit": { "max": n, "windowMs": ms } } to set a limit, or { "limit": null } to remove it',
          );
        }
        const limit = body.limit as { max: number; windowMs: number } | null;
        await (await data.resolve(name!, busParam(url))).setRateLimit(limit);
        return { result: { rateLimit: limit } };
      }),
      read(`/buses/${q}`, async ({ data }, [name]) => ({ result: await data.busDetail(name!) })),
      read(`/buses/${q}/history`, async ({ data, url }, [name]) => {
        const type = url.searchParams.get('type');
        if (!type) throw new ValidationError('type', 'history needs ?type=<event type>');
        await data.requireBus(name!);
        return { result: await data.history(name!, type, intParam(url, 'limit', 20, 1, MAX_PAGE)) };
      }),
      act(`/buses/${q}/subscriptions/${q}/pause`, 'subscription.pause', async ({ data }, [name, id]) => {
        await (await data.requireBus(name!)).pause(id!);
        return { result: { paused: true }, target: `${name}/${id}` };
      }),
      act(`/buses/${q}/subscriptions/${q}/resume`, 'subscription.resume', async ({ data }, [name, id]) => {
        await (await data.requireBus(name!)).resume(id!);
        return { result: { paused: false }, target: `${name}/${id}` };
      }),
      read('/jobs', async ({ data }) => ({ result: await data.jobs() })),
      ...(['pause', 'resume', 'restart'] as const).map((verb) =>
        act(`/jobs/${q}/${verb}`, `job.${verb}`, async ({ data }, [name]) => {
          await data.jobAction(name!, verb);
          return { result: { job: name, done: verb } };
        }),
      ),
      read('/locks', async ({ data }) => ({ result: await data.lockList() })),
      read('/outbox', async ({ data, url }) => ({
        result: await data.outboxDetail(intParam(url, 'limit', 50, 1, MAX_PAGE)),
      })),
      act('/outbox/retry-failed', 'outbox.retryFailed', async ({ data, body }) => {
        const eventIds = body.eventIds === undefined ? undefined : idList(body.eventIds);
        return { result: { retried: await data.outboxRetry(eventIds) }, target: 'outbox' };
      }),
    ];
  }
}

/** The dead letters an action names: `ids`, or every one matching `filter` (`{ all: true }` for the whole DLQ). */
async function selectedDeadLetters(data: DashboardData, queue: Queue, body: Record<string, unknown>) {
  const given = ['ids', 'filter', 'all'].filter((key) => body[key] !== undefined);
  if (given.length > 1)
    throw new ValidationError(given[1]!, `give one of ids, filter or all, not ${given.join(' and ')}`);
  if (body.ids !== undefined) return idList(body.ids);
  if (body.filter !== undefined) {
    const filter = filterObject(body.filter);
    if (Object.keys(filter).length === 0) {
      throw new ValidationError(
        'filter',
        'filter needs id, type, partitionKey or text; use { all: true } for the oldest 1,000 dead letters',
      );
    }
    return await data.matchingDeadLetters(queue, filter, MAX_MATCHING);
  }
  if (body.all === true) {
    return (await queue.deadLetters({ limit: 1000 })).map((dead) => dead.id);
  }
  throw new ValidationError(
    'ids',
    'give ids: [...], filter: { id, type, partitionKey, text } or all: true (the oldest 1,000 dead letters)',
  );
}

function idList(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((id) => typeof id !== 'string')) {
    throw new ValidationError('ids', 'ids must be an array of message ids (strings)');
  }
  return value as string[];
}

function filterObject(value: unknown): SearchFilter {
  if (typeof value !== 'object' || value === null) {
    throw new ValidationError('filter', 'filter must be an object { type, partitionKey, text, id }');
  }
  const filter: SearchFilter = {};
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    if (key !== 'type' && key !== 'partitionKey' && key !== 'text' && key !== 'id') {
      throw new ValidationError('filter', `filter takes type, partitionKey, text and id, got ${key}`);
    }
    if (field === undefined || field === '') continue;
    if (typeof field !== 'string') throw new ValidationError(`filter.${key}`, `filter.${key} must be a string`);
    filter[key] = field;
  }
  return filter;
}

function filterParams(params: URLSearchParams): SearchFilter {
  const filter: Record<string, string> = {};
  for (const key of ['id', 'type', 'partitionKey', 'text']) {
    const value = params.get(key);
    if (value) filter[key] = value;
  }
  if (Object.keys(filter).length === 0) {
    throw new ValidationError('filter', 'search needs id, type, partitionKey or text');
  }
  return filterObject(filter);
}

/** `?bus=<bus>`: the queue named is that bus's subscriber's queue. */
function busParam(url: URL): string | null {
  const bus = url.searchParams.get('bus');
  return bus === null || bus === '' ? null : bus;
}

function stateParam(url: URL): (typeof PEEK_STATES)[number] {
  const state = url.searchParams.get('state') ?? 'ready';
  const found = PEEK_STATES.find((known) => known === state);
  if (!found) throw new ValidationError('state', `state must be one of ${PEEK_STATES.join(', ')}, got ${state}`);
  return found;
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ValidationError(name, `${name} must be a whole number from ${min} to ${max}, got ${raw}`);
  }
  return n;
}

/** The dead letters of one action in calls of at most 1,000 ids (the queue's batch limit). */
function batches(ids: string[]): string[][] {
  const out: string[][] = [];
  for (let n = 0; n < ids.length; n += 1000) out.push(ids.slice(n, n + 1000));
  return out;
}

function decodeParam(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ValidationError('path', `the address holds a malformed %-escape: ${text.slice(0, 60)}`);
  }
}

/** Whether the client reached us over TLS (directly, or through a proxy that says so). */
function isSecure(request: IncomingMessage): boolean {
  if ((request.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  const forwarded = request.headers['x-forwarded-proto'];
  return (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim() === 'https';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function presentedToken(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) {
      try {
        return decodeURIComponent(value.join('='));
      } catch {
        return null; // a malformed cookie is no token
      }
    }
  }
  return null;
}

/**
 * A browser's cross-site write is refused: it says where it comes from in Sec-Fetch-Site (every current
 * browser) or Origin, and a JSON body cannot be sent cross-site without a CORS preflight this server never
 * answers. Clients that send neither header (curl, scripts) are not browsers and pass, token permitting.
 */
function checkSameOrigin(request: IncomingMessage): void {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new DashboardError('CROSS_SITE', `a ${site} request may not act on this dashboard (Sec-Fetch-Site)`);
  }
  // The browser says it is the page's own request: behind a proxy that rewrites Host, Origin would not match.
  if (site === 'same-origin') return;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new DashboardError('CROSS_SITE', `the request's Origin ${origin} is not a URL`);
    }
    if (host !== request.headers.host) {
      throw new DashboardError('CROSS_SITE', `a request from ${origin} may not act on this dashboard (Origin)`);
    }
  } else if (origin === 'null') {
    throw new DashboardError('CROSS_SITE', 'a request from an opaque origin may not act on this dashboard');
  }
}

async function readBody(request: IncomingMessage, required: boolean): Promise<Record<string, unknown>> {
  if (!required) return {};
  // Whatever parsed the body before us (a form parser would take a cross-site form post), an action is JSON.
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new DashboardError('UNSUPPORTED_MEDIA_TYPE', 'actions take a JSON body: send Content-Type: application/json');
  }
  // Express or Fastify may have parsed the body already.
  const parsed = (request as { body?: unknown }).body;
  if (parsed !== undefined && typeof parsed === 'object' && parsed !== null && !Buffer.isBuffer(parsed)) {
    return parsed as Record<string, unknown>;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ValidationError('body', `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ValidationError('body', `the request body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('body', 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

/** Where the handler is mounted (Express's app.use('/ops', …) strips it from request.url). */
function mountPath(request: IncomingMessage): string {
  const original = (request as { originalUrl?: string }).originalUrl;
  if (!original) return '/';
  const own = (request.url ?? '/').split('?')[0]!;
  const full = original.split('?')[0]!;
  const base = full.endsWith(own) ? full.slice(0, full.length - own.length) : '';
  const trimmed = base.replace(/^[/\\]+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '/' : `/${trimmed}/`;
}

function securityHeaders(response: ServerResponse): void {
  response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('Referrer-Policy', 'no-referrer');
  response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  response.statusCode = status;
  response.setHeader('Content-Type', type);
  response.end(body);
}

function json(response: ServerResponse, status: number, value: unknown): void {
  response.setHeader('Cache-Control', 'no-store');
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function statusOf(error: SluiceError): number {
  if (error instanceof DashboardError) return error.status;
  if (error instanceof ValidationError) return 400;
  if (error instanceof UnknownSubscriberError || error instanceof JobNotFoundError) return 404;
  if (error.code === 'CONNECTION') return 503;
  return 500;
}

/** The page: relative asset paths, so it works wherever it is mounted. */
function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice</title>
<link rel="stylesheet" href="assets/app.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="assets/app.js"></script>
</body>
</html>
`;
}
