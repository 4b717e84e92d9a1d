import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, Redis } from 'ioredis';
import { commandError } from './connection.js';
import { BUS_KEY_SUFFIXES, QUEUE_KEY_SUFFIXES, REQUEST_KEY_SUFFIX, REQUEST_TTL_MS } from './keys.js';
import { REPLY, type ScriptName, type ScriptReplies } from './replies.js';

/**
 * Loads `lua/<domain>/<transition>.lua`, resolves `--@include "<fragment>"` lines from `lua/includes/`, prepends the
 * key layout generated from keys.ts and the reply codes from replies.ts, and registers each script with ioredis `defineCommand`.
 *
 * ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (after a Redis restart, say), so nothing here
 * tracks whether a script is loaded. Commands are registered under `sluice_<version>_<name>`, where the
 * version is a digest of every script's text: two versions of the library can share one connection.
 * A script's name is its path under lua/ without `.lua` (`queue/send`), as in ScriptName (replies.ts).
 */

export type RedisClient = Redis | Cluster;

function findLuaDir(): string {
  // src/scripts.ts runs from src/ under vitest and from dist/src/ once built.
  for (const relative of ['../lua/', '../../lua/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error('sluice: cannot find the lua/ directory next to the package');
}

const LUA_DIR = findLuaDir();
const INCLUDE_PATTERN = /^--@include "([A-Za-z0-9_]+)"\s*$/gm;

function luaTable(name: string, entries: Record<string, string | number>): string {
  const lines = Object.entries(entries)
    .map(([key, value]) => `  ${key} = ${typeof value === 'number' ? value : `'${value}'`},`)
    .join('\n');
  return `local ${name} = {\n${lines}\n}\n`;
}

/** Lua identifiers a text names outside its comments (an over-approximation: strings are not told apart). */
function identifiers(lua: string): Set<string> {
  const code = lua.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--[^\n]*/g, '');
  return new Set(code.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
}

/**
 * The constants a script uses, generated from keys.ts. A script runs its whole text on every call, so each
 * gets only the tables it names, and of QUEUE_KEY_SUFFIXES only the keys it names (`k.inflight`; the ready
 * lists whenever it names `ready`, which scripts index by priority), unless it walks the whole table.
 */
function generatedLayout(body: string): string {
  const names = identifiers(body);
  const walksQueueKeys = /pairs\(QUEUE_KEY_SUFFIXES\)/.test(body);
  const queueKeys = Object.fromEntries(
    Object.entries(QUEUE_KEY_SUFFIXES).filter(
      ([name]) => walksQueueKeys || names.has(name) || (name.startsWith('ready') && names.has('ready')),
    ),
  );
  return (
    '-- Generated from src/keys.ts. DO NOT EDIT in Lua (REPLY.<NAME> codes are replaced by their values from src/replies.ts).\n' +
    (names.has('QUEUE_KEY_SUFFIXES') ? luaTable('QUEUE_KEY_SUFFIXES', queueKeys) : '') +
    (names.has('BUS_KEY_SUFFIXES') ? luaTable('BUS_KEY_SUFFIXES', BUS_KEY_SUFFIXES) : '') +
    (names.has('REQUEST_KEY_SUFFIX') ? `local REQUEST_KEY_SUFFIX = '${REQUEST_KEY_SUFFIX}'\n` : '') +
    (names.has('REQUEST_TTL_MS') ? `local REQUEST_TTL_MS = ${REQUEST_TTL_MS}\n` : '')
  );
}

const INCLUDED_MARK = '-- (included above:';

/** The fragments a script includes, each once, in an order where every fragment follows those it includes. */
function collectIncludes(source: string, seen: Set<string>, out: string[]): string {
  return source.replace(INCLUDE_PATTERN, (_line, name: string) => {
    if (!seen.has(name)) {
      seen.add(name);
      const fragment = readFileSync(`${LUA_DIR}includes/${name}.lua`, 'utf8');
      out.push(collectIncludes(fragment, seen, out));
    }
    return `${INCLUDED_MARK} ${name}.lua)`;
  });
}

/** A top-level declaration of a fragment: `local function name(` or `local a, b = ...`, up to the next one. */
interface Declaration {
  names: string[];
  text: string;
}

const DECLARATION = /^local (?:function ([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_, ]*?)\s*(?:=|$))/;

function declarations(fragment: string): { lead: string; declarations: Declaration[] } {
  const lines = fragment.split('\n');
  let lead = '';
  const found: Declaration[] = [];
  for (const line of lines) {
    const match = DECLARATION.exec(line);
    if (match) {
      const names = match[1] ? [match[1]] : match[2]!.split(',').map((name) => name.trim());
      found.push({ names, text: `${line}\n` });
    } else if (found.length > 0) {
      found[found.length - 1]!.text += `${line}\n`;
    } else {
      lead += `${line}\n`;
    }
  }
  return { lead, declarations: found };
}

/**
 * Resolves `--@include` lines and keeps, of the included fragments, only the declarations the script needs
 * (named by its body, or by a declaration it needs): Lua runs a script's whole text on every call, and
 * defining every function of every fragment cost more than some scripts' own work. A fragment holds nothing
 * but comments and top-level `local` declarations; a name dropped by mistake would be a global, which
 * `npm run lint:lua` refuses.
 */
function resolveIncludes(source: string): string {
  const fragments: string[] = [];
  const body = collectIncludes(source, new Set(), fragments);
  const parsed = fragments.map(declarations);
  const needed = identifiers(body);
  const kept = new Set<Declaration>();
  for (let grew = true; grew;) {
    grew = false;
    for (const { declarations: list } of parsed) {
      for (const declaration of list) {
        if (kept.has(declaration) || !declaration.names.some((name) => needed.has(name))) continue;
        kept.add(declaration);
        for (const name of identifiers(declaration.text)) needed.add(name);
        grew = true;
      }
    }
  }
  const included = parsed
    .map(({ lead, declarations: list }) => lead + list.map((d) => (kept.has(d) ? d.text : '')).join(''))
    .join('');
  // The fragments go where the script's first include line was, after its header.
  const at = body.indexOf(INCLUDED_MARK);
  return at < 0 ? body : body.slice(0, at) + included + body.slice(at);
}

/**
 * `REPLY.<NAME>` in a script becomes the number replies.ts gives it when the script is loaded: the codes are
 * defined once, and a table built on every call would cost every call (scripts run their whole text each time).
 */
function withReplyCodes(name: string, lua: string): string {
  return lua.replace(/\bREPLY\.([A-Z_]+)\b/g, (_match, code: string) => {
    const value = (REPLY as Record<string, number>)[code];
    if (value === undefined)
      throw new Error(`sluice: lua/${name}.lua uses REPLY.${code}, which src/replies.ts does not define`);
    return `${value} --[[${code}]]`;
  });
}

export interface LoadedScript {
  name: string;
  numberOfKeys: number;
  lua: string;
  /** the script takes a request id and the confirmed ones as ARGV[1] and ARGV[2] (lua/includes/request.lua) */
  takesRequestId: boolean;
  /** how many confirmations gather before a call carries them (CONFIRM_BATCH on queue and bus keys, else 1) */
  confirmBatch: number;
}

/** A script whose header names `ARGV[1] request id` follows the protocol of lua/includes/request.lua. */
const REQUEST_ARGS = /ARGV\[1\] request id\b/;

/** The number of keys is the highest `KEYS[i]` named in the script's header comment. */
function countKeys(name: string, source: string): number {
  const header = /^--\[\[([\s\S]*?)\]\]/.exec(source);
  if (!header?.[1]) throw new Error(`sluice: lua/${name}.lua has no --[[ header ]] block`);
  const indexes = [...header[1].matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
  if (indexes.length === 0) throw new Error(`sluice: lua/${name}.lua header names no KEYS[i]`);
  return Math.max(...indexes);
}

/**
 * On a queue's or a bus's key (few keys, many calls) confirmations wait until this many have gathered, then
 * go in one call: a DEL of 16 keys costs Redis about what a DEL of one does, and most calls carry none. The
 * price is up to 15 remembered replies per client and queue beyond the minimum (short keys, gone by their TTL
 * at worst). Other keys (a rate limiter's, one per user) confirm at the next call, as memory there grows
 * with the number of keys.
 */
export const CONFIRM_BATCH = 16;

function loadScripts(): Map<string, LoadedScript> {
  const scripts = new Map<string, LoadedScript>();
  const files = readdirSync(LUA_DIR, { recursive: true, encoding: 'utf8' })
    .map((file) => file.split(sep).join('/'))
    .filter((file) => file.endsWith('.lua') && !file.startsWith('includes/'))
    .sort();
  for (const file of files) {
    const name = file.slice(0, -'.lua'.length);
    const source = readFileSync(`${LUA_DIR}${file}`, 'utf8');
    const body = withReplyCodes(name, resolveIncludes(source));
    const lua = `${generatedLayout(body)}${body}`;
    const header = /^--\[\[([\s\S]*?)\]\]/.exec(source)?.[1] ?? '';
    scripts.set(name, {
      name,
      numberOfKeys: countKeys(name, source),
      lua,
      takesRequestId: REQUEST_ARGS.test(header),
      confirmBatch: name.startsWith('queue/') || name.startsWith('bus/') ? CONFIRM_BATCH : 1,
    });
  }
  return scripts;
}

export const SCRIPTS = loadScripts();

export const SCRIPTS_VERSION = createHash('sha1')
  .update([...SCRIPTS.values()].map((s) => s.lua).join('\0'))
  .digest('hex')
  .slice(0, 10);

export type { ScriptName } from './replies.js';

const registered = new WeakSet<RedisClient>();

function commandName(name: string): string {
  return `sluice_${SCRIPTS_VERSION}_${name.replace('/', '_')}`;
}

/** Define every script on this client once (idempotent). */
export function registerScripts(client: RedisClient): void {
  if (registered.has(client)) return;
  for (const script of SCRIPTS.values()) {
    client.defineCommand(commandName(script.name), { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  registered.add(client);
}

type ScriptCommand = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/**
 * Request ids: unique across processes (a random nonce per process) and short (a counter), since each is
 * part of a key while its reply is remembered.
 */
const REQUEST_NONCE = randomBytes(6).toString('base64url');
let requestCounter = 0;

export function newRequestId(): string {
  return REQUEST_NONCE + (requestCounter++).toString(36);
}

/**
 * Per client and KEYS[1]: ids of requests whose replies arrived. They can never be re-sent, so the next
 * request on the same KEYS[1] tells the script to forget them (lua/includes/request.lua).
 */
const confirmedRequests = new WeakMap<RedisClient, Map<string, string[]>>();
const MAX_CONFIRMED_PER_CALL = 100;
/** Keys of a client whose confirmations are kept; past this the oldest are dropped (their TTL frees them). */
const MAX_CONFIRMED_KEYS = 10_000;

function takeConfirmed(client: RedisClient, key: string, batch: number): string {
  const list = confirmedRequests.get(client)?.get(key);
  if (!list || list.length < batch) return '';
  return list.splice(0, MAX_CONFIRMED_PER_CALL).join(' ');
}

function confirm(client: RedisClient, key: string, requestId: string): void {
  let perKey = confirmedRequests.get(client);
  if (!perKey) confirmedRequests.set(client, (perKey = new Map()));
  const list = perKey.get(key);
  if (list) {
    list.push(requestId);
    return;
  }
  if (perKey.size >= MAX_CONFIRMED_KEYS) perKey.delete(perKey.keys().next().value!);
  perKey.set(key, [requestId]);
}

/**
 * Run one script: KEYS first, then ARGV. A script that takes a request id gets one generated here, once
 * for this call, so that a re-send of the same command after a lost reply has the effect of one call;
 * a caller that retries a failed call itself passes the same `requestId` to every attempt.
 */
export function runScript<N extends ScriptName>(
  client: RedisClient,
  name: N,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
  requestId?: string,
): Promise<ScriptReplies[N]> {
  registerScripts(client);
  const script = SCRIPTS.get(name);
  if (!script) throw new Error(`sluice: no script lua/${name}.lua`);
  if (keys.length !== script.numberOfKeys) {
    throw new Error(`sluice: script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  }
  const command = (client as unknown as Record<string, ScriptCommand>)[commandName(name)];
  if (!command) throw new Error(`sluice: script ${name} is not registered on this client`);
  const base = keys[0] ?? '';
  // Connection trouble, OOM and WRONGTYPE become SluiceErrors naming the address or the key and the script.
  const failed = (error: unknown) => {
    throw commandError(client, name, base, error);
  };
  if (!script.takesRequestId)
    return command.call(client, ...keys, ...args).then((reply) => reply as ScriptReplies[N], failed);
  const id = requestId ?? newRequestId();
  const confirmed = takeConfirmed(client, base, script.confirmBatch);
  return command.call(client, ...keys, id, confirmed, ...args).then(
    (reply) => {
      confirm(client, base, id);
      return reply as ScriptReplies[N];
    },
    (error: unknown) => {
      // The call may not have run: the next call on this key carries the confirmations again.
      if (confirmed !== '') for (const confirmedId of confirmed.split(' ')) confirm(client, base, confirmedId);
      return failed(error);
    },
  );
}
