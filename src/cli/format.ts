/** Output of the CLI: JSON for scripts (`--json`), plain tables for people. */

export interface Output {
  json: boolean;
  /** one value, as JSON or as what `human` prints */
  print(value: unknown, human: () => string): void;
  line(text: string): void;
}

export function output(json: boolean): Output {
  return {
    json,
    print(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
    },
    line(text) {
      process.stdout.write(`${text}\n`);
    },
  };
}

/** Left-aligned columns separated by two spaces; `(none)` under the headers when there are no rows. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((row) => row.map(String));
  const widths = headers.map((header, n) => Math.max(header.length, ...cells.map((row) => (row[n] ?? '').length)));
  const render = (row: string[]) =>
    row
      .map((cell, n) => (n === row.length - 1 ? cell : cell.padEnd(widths[n]!)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...(cells.length === 0 ? ['(none)'] : cells.map(render))].join('\n');
}

/** `key: value` lines, keys aligned. */
export function fields(entries: [string, string | number][]): string {
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width + 1)} ${value}`).join('\n');
}

/** A duration for people: 850ms, 12.3s, 4m05s, 2h10m, 3d4h. */
export function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** An epoch-ms time as ISO text, `-` for none. */
export function time(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

/** A value shortened for a table cell. */
export function short(value: unknown, max = 60): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined');
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
