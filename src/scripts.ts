import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Cluster, Redis } from 'ioredis';
import { commandError } from './connection.js';
import { BUS_KEY_SUFFIXES, QUEUE_KEY_SUFFIXES } from './keys.js';

/**
 * Loads `lua/<transition>.lua`, resolves `--@include "<fragment>"` lines from `lua/includes/`, prepends the
 * key layout generated from keys.ts, and registers each script with ioredis `defineCommand`.
 *
 * ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (after a Redis restart, say), so nothing here
 * tracks whether a script is loaded. Commands are registered under `sluice_<version>_<name>`, where the
 * version is a digest of every script's text: two versions of the library can share one connection.
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

function luaTable(name: string, suffixes: Record<string, string>): string {
  const entries = Object.entries(suffixes)
    .map(([key, suffix]) => `  ${key} = '${suffix}',`)
    .join('\n');
  return `local ${name} = {\n${entries}\n}\n`;
}

function generatedKeyLayout(): string {
  return (
    '-- Key layout generated from src/keys.ts. DO NOT EDIT in Lua.\n' +
    luaTable('QUEUE_KEY_SUFFIXES', QUEUE_KEY_SUFFIXES) +
    luaTable('BUS_KEY_SUFFIXES', BUS_KEY_SUFFIXES)
  );
}

function resolveIncludes(source: string, seen: Set<string>): string {
  return source.replace(INCLUDE_PATTERN, (_line, name: string) => {
    if (seen.has(name)) return `-- (${name} already included)`;
    seen.add(name);
    const fragment = readFileSync(`${LUA_DIR}includes/${name}.lua`, 'utf8');
    return resolveIncludes(fragment, seen);
  });
}

export interface LoadedScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

/** The number of keys is the highest `KEYS[i]` named in the script's header comment. */
function countKeys(name: string, source: string): number {
  const header = /^--\[\[([\s\S]*?)\]\]/.exec(source);
  if (!header?.[1]) throw new Error(`sluice: lua/${name}.lua has no --[[ header ]] block`);
  const indexes = [...header[1].matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
  if (indexes.length === 0) throw new Error(`sluice: lua/${name}.lua header names no KEYS[i]`);
  return Math.max(...indexes);
}

function loadScripts(): Map<string, LoadedScript> {
  const scripts = new Map<string, LoadedScript>();
  const layout = generatedKeyLayout();
  for (const file of readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua')).sort()) {
    const name = file.slice(0, -'.lua'.length);
    const source = readFileSync(`${LUA_DIR}${file}`, 'utf8');
    const lua = `${layout}${resolveIncludes(source, new Set())}`;
    scripts.set(name, { name, numberOfKeys: countKeys(name, source), lua });
  }
  return scripts;
}

export const SCRIPTS = loadScripts();

export const SCRIPTS_VERSION = createHash('sha1')
  .update([...SCRIPTS.values()].map((s) => s.lua).join('\0'))
  .digest('hex')
  .slice(0, 10);

export type ScriptName =
  | 'send'
  | 'dequeue'
  | 'ack'
  | 'nack'
  | 'extend'
  | 'reclaim'
  | 'promote'
  | 'deadLetterList'
  | 'replay'
  | 'purge'
  | 'pause'
  | 'rateLimit'
  | 'stats'
  | 'inspect'
  | 'lockAcquire'
  | 'lockExtend'
  | 'lockRelease'
  | 'schedulerRegister'
  | 'schedulerClaim'
  | 'schedulerFinish'
  | 'schedulerControl'
  | 'schedulerForget'
  | 'wake'
  | 'publish'
  | 'subscribe'
  | 'unsubscribe'
  | 'subscriptionActive'
  | 'historyReplay'
  | 'eventStats';

const registered = new WeakSet<RedisClient>();

function commandName(name: string): string {
  return `sluice_${SCRIPTS_VERSION}_${name}`;
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

/** Run one script: KEYS first, then ARGV. */
export function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
): Promise<unknown> {
  registerScripts(client);
  const script = SCRIPTS.get(name);
  if (!script) throw new Error(`sluice: no script lua/${name}.lua`);
  if (keys.length !== script.numberOfKeys) {
    throw new Error(`sluice: script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  }
  const command = (client as unknown as Record<string, ScriptCommand>)[commandName(name)];
  if (!command) throw new Error(`sluice: script ${name} is not registered on this client`);
  // Connection trouble, OOM and WRONGTYPE become SluiceErrors naming the address or the key and the script.
  return command.call(client, ...keys, ...args).catch((error: unknown) => {
    throw commandError(client, name, keys[0] ?? '', error);
  });
}
