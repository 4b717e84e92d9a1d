import { describe, expect, it } from 'vitest';
import { SCRIPTS } from '../src/scripts.js';
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
