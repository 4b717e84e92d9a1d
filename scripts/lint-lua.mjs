// Lints every script as Redis will run it (includes resolved, key layout prepended):
// `luac5.1 -p` for syntax, then the bytecode listing for globals that are neither Redis's nor Lua's,
// which catches misspelt names and accidental global assignments before a test ever runs them.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRIPTS } from '../dist/src/scripts.js';

const ALLOWED = new Set([
  'redis',
  'cjson',
  'cmsgpack',
  'struct',
  'bit',
  'KEYS',
  'ARGV',
  'table',
  'string',
  'math',
  'unpack',
  'ipairs',
  'pairs',
  'tonumber',
  'tostring',
  'type',
  'select',
  'error',
  'pcall',
  'next',
  'assert',
  'setmetatable',
  'getmetatable',
  'rawget',
  'rawset',
]);

const luac = ['luac5.1', 'luac'].find((bin) => spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0);
if (!luac) {
  const message = 'lint:lua: luac5.1 not found (apt-get install lua5.1); Lua scripts were not linted';
  if (process.env.CI === 'true') {
    console.error(message);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-lua-'));
const problems = [];
for (const script of SCRIPTS.values()) {
  const file = join(dir, `${script.name.replace('/', '_')}.lua`);
  writeFileSync(file, script.lua);
  let listing;
  try {
    listing = execFileSync(luac, ['-p', '-l', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    problems.push(`${script.name}: ${error.stderr || error.message}`);
    continue;
  }
  for (const match of listing.matchAll(/\[(\d+)\]\s+(GETGLOBAL|SETGLOBAL)\s+.*;\s+(\S+)/g)) {
    const [, line, op, name] = match;
    if (op === 'SETGLOBAL' || !ALLOWED.has(name)) {
      problems.push(
        `${script.name}.lua (assembled) line ${line}: ${op === 'SETGLOBAL' ? 'assigns' : 'reads'} global ${name}`,
      );
    }
  }
}
if (problems.length > 0) {
  console.error(`lint:lua found ${problems.length} problem(s):\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`lint:lua: ${SCRIPTS.size} scripts pass ${luac} -p and the globals check`);
