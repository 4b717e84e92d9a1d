// Checks the dependency directions of src/: no cycle of runtime imports (an `import type`, or an import
// whose every name is a `type`, is erased by the compiler and does not count), and no domain reached from
// the scheduler, which runs the job definitions other domains hand it and knows none of them.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

/** Domains the scheduler must not import, even for types: it depends on none of them. */
const SCHEDULER_MAY_NOT_IMPORT = ['queue', 'events', 'locks'];

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

// `import ... from '...'`, `export ... from '...'` and side-effect `import '...'`, across lines.
const STATEMENT =
  /(?:^|\n)\s*(import|export)\s+([^'";]*?)\s*from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

/** Whether the compiler erases this import or export clause. */
function typeOnly(clause) {
  if (/^type\s/.test(clause)) return true;
  const named = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!named) return false;
  const names = named[1]
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  return names.length > 0 && names.every((n) => n.startsWith('type '));
}

const graph = new Map(); // file -> { runtime: Set<file>, all: Set<file> }
for (const file of files(src)) {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/[^\n]*/g, '');
  const edges = { runtime: new Set(), all: new Set() };
  for (const match of text.matchAll(STATEMENT)) {
    const specifier = match[3] ?? match[4];
    if (!specifier.startsWith('.')) continue;
    const target = resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
    edges.all.add(target);
    if (match[4] !== undefined || !typeOnly(match[2])) edges.runtime.add(target);
  }
  graph.set(file, edges);
}

const name = (file) => relative(root, file);
const problems = [];

// Tarjan's strongly connected components over runtime edges: every component of more than one file (or
// a file importing itself) is a cycle.
let index = 0;
const stack = [];
const state = new Map();
function connect(file) {
  const me = { index, low: index, onStack: true };
  index++;
  state.set(file, me);
  stack.push(file);
  for (const next of graph.get(file)?.runtime ?? []) {
    if (!graph.has(next)) continue;
    const seen = state.get(next);
    if (!seen) {
      connect(next);
      me.low = Math.min(me.low, state.get(next).low);
    } else if (seen.onStack) me.low = Math.min(me.low, seen.index);
  }
  if (me.low !== me.index) return;
  const component = [];
  let member;
  do {
    member = stack.pop();
    state.get(member).onStack = false;
    component.push(member);
  } while (member !== file);
  if (component.length > 1 || graph.get(file).runtime.has(file)) {
    problems.push(`import cycle: ${component.map(name).sort().join(' <-> ')}`);
  }
}
for (const file of graph.keys()) if (!state.has(file)) connect(file);

// Layers built on the domains (the outbox, and the service, CLI, dashboard and telemetry as they come) use
// their public API only: src/index.ts and the shared modules at the top of src/, never a domain's own files.
const BUILT_ON_PUBLIC_API = ['outbox', 'service', 'cli', 'dashboard', 'telemetry'];
const DOMAINS = ['queue', 'events', 'locks', 'scheduler'];
for (const [file, edges] of graph) {
  if (!BUILT_ON_PUBLIC_API.some((layer) => file.startsWith(join(src, layer) + '/'))) continue;
  for (const target of edges.all) {
    const domain = DOMAINS.find((d) => target.startsWith(join(src, d) + '/'));
    if (domain)
      problems.push(
        `${name(file)} imports ${name(target)}: build on the public API (src/index.ts), not on the ${domain} domain's files`,
      );
  }
}

for (const [file, edges] of graph) {
  if (!file.startsWith(join(src, 'scheduler') + '/')) continue;
  for (const target of edges.all) {
    const domain = SCHEDULER_MAY_NOT_IMPORT.find((d) => target.startsWith(join(src, d) + '/'));
    if (domain) problems.push(`${name(file)} imports ${name(target)}: the scheduler depends on no domain (${domain})`);
  }
}

if (problems.length > 0) {
  console.error(`check-cycles: ${problems.length} problem(s) in the dependency directions of src/:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
