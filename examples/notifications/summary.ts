// What a run did, per channel and in total, and how it is printed.
import { CHANNELS, type ChannelName } from './channels.js';

export interface ChannelSummary {
  /** messages written to the channel's queue */
  queued: number;
  /** messages the channel delivered (acked) */
  sent: number;
  /** failed attempts that were retried after the backoff */
  retried: number;
  /** messages that failed every attempt and went to the channel's dead-letter queue */
  deadLettered: number;
  /** messages not queued because their user was over the per-user limit */
  rateLimited: number;
  /** messages not queued because the same (user, signal, channel) was queued before */
  deduplicated: number;
}

export interface Summary {
  seed: number;
  users: { total: number; premium: number };
  signals: { total: number; rateLimited: number; duplicates: number };
  channels: Record<ChannelName, ChannelSummary>;
  totals: ChannelSummary;
}

const COLUMNS: readonly (keyof ChannelSummary)[] = [
  'queued',
  'sent',
  'retried',
  'deadLettered',
  'rateLimited',
  'deduplicated',
];
const HEADINGS: Record<keyof ChannelSummary, string> = {
  queued: 'queued',
  sent: 'sent',
  retried: 'retried',
  deadLettered: 'dead-lettered',
  rateLimited: 'rate-limited',
  deduplicated: 'deduplicated',
};
const LABELS: Record<ChannelName, string> = { inapp: 'in-app', email: 'email', sms: 'sms', push: 'push' };

export function emptyChannelSummary(): ChannelSummary {
  return { queued: 0, sent: 0, retried: 0, deadLettered: 0, rateLimited: 0, deduplicated: 0 };
}

export function totalOf(channels: Record<ChannelName, ChannelSummary>): ChannelSummary {
  const total = emptyChannelSummary();
  for (const channel of CHANNELS) for (const column of COLUMNS) total[column] += channels[channel][column];
  return total;
}

/** The summary as a table, one row per channel and a total row. */
export function formatSummary(summary: Summary): string {
  const rows: string[][] = [['channel', ...COLUMNS.map((c) => HEADINGS[c])]];
  for (const channel of CHANNELS) {
    rows.push([LABELS[channel], ...COLUMNS.map((c) => String(summary.channels[channel][c]))]);
  }
  rows.push(['total', ...COLUMNS.map((c) => String(summary.totals[c]))]);
  const widths = rows[0]!.map((_, n) => Math.max(...rows.map((row) => row[n]!.length)));
  const line = (row: string[]) =>
    row.map((cell, n) => (n === 0 ? cell.padEnd(widths[n]!) : cell.padStart(widths[n]!))).join('  ');
  return [
    `seed ${summary.seed}: ${summary.signals.total} signals for ${summary.users.total} users (${summary.users.premium} premium); ` +
      `${summary.signals.rateLimited} signals over their user's limit, ${summary.signals.duplicates} duplicates`,
    line(rows[0]!),
    ...rows.slice(1).map(line),
  ].join('\n');
}
