import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPLY } from '../src/replies.js';
import { SCRIPTS, type ScriptName } from '../src/scripts.js';
import { useRedis } from './helpers.js';

const env = useRedis();

describe('Lua scripts', () => {
  it('every script compiles in Redis as the loader assembles it', async () => {
    expect(SCRIPTS.size).toBeGreaterThanOrEqual(14);
    for (const script of SCRIPTS.values()) {
      const sha = await env.redis.script('LOAD', script.lua);
      expect(sha, script.name).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  it('every script opens with a header naming its KEYS, ARGV and what it returns', () => {
    for (const script of SCRIPTS.values()) {
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(script.lua.slice(script.lua.indexOf('--[[')))?.[1] ?? '';
      expect(header, script.name).toMatch(new RegExp(`^ ${script.name}:`));
      expect(header, script.name).toContain('KEYS[1]');
      expect(header, script.name).toMatch(/Returns:/);
      expect(script.numberOfKeys, script.name).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('script names', () => {
  it('the scripts on disk are exactly the ones ScriptName lists, each under lua/<domain>/', () => {
    // A Record over ScriptName: the compiler refuses this list when a name is missing or extra.
    const listed: Record<ScriptName, true> = {
      'queue/send': true,
      'queue/dequeue': true,
      'queue/ack': true,
      'queue/ackProcessed': true,
      'queue/skipProcessed': true,
      'queue/nack': true,
      'queue/extend': true,
      'queue/reclaim': true,
      'queue/promote': true,
      'queue/replay': true,
      'queue/purge': true,
      'queue/pause': true,
      'queue/rateLimit': true,
      'queue/wake': true,
      'queue/stats': true,
      'queue/presence': true,
      'queue/consumers': true,
      'queue/inspect': true,
      'queue/deadLetterList': true,
      'queue/request': true,
      'queue/reply': true,
      'queue/peek': true,
      'queue/search': true,
      'queue/requestCancel': true,
      'bus/publish': true,
      'bus/subscribe': true,
      'bus/unsubscribe': true,
      'bus/subscriptionActive': true,
      'bus/historyReplay': true,
      'bus/stats': true,
      'lock/acquire': true,
      'lock/extend': true,
      'lock/release': true,
      'lock/rateTake': true,
      'scheduler/register': true,
      'scheduler/claim': true,
      'scheduler/finish': true,
      'scheduler/control': true,
      'scheduler/forget': true,
      'registry/register': true,
    };
    expect([...SCRIPTS.keys()].sort()).toEqual(Object.keys(listed).sort());
    for (const name of SCRIPTS.keys()) expect(name).toMatch(/^(queue|bus|lock|scheduler|registry)\/[a-zA-Z]+$/);
  });

  it('reply codes reach Lua from replies.ts: no script returns a bare status number', () => {
    for (const script of SCRIPTS.values()) {
      const source = readFileSync(new URL(`../lua/${script.name}.lua`, import.meta.url), 'utf8');
      const code = source.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--[^\n]*/g, '');
      expect(code, script.name).not.toMatch(/return (unchanged\()?-?[0-9]\)?\s*$|rememberInt\(requestKey, -?[0-9]\)/m);
    }
    // The loader put the numbers in place of the names.
    expect(SCRIPTS.get('queue/ack')!.lua).toContain(`results[n] = ${REPLY.OK} --[[OK]]`);
  });
});
