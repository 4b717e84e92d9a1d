import { describe, expect, it } from 'vitest';
import { cronSchedule, intervalSchedule } from '../src/scheduler/schedule.js';

describe('schedules: tick identities every process agrees on', () => {
  it('interval ticks fall on multiples of the interval; catch-up runs missed ticks, otherwise they are skipped', () => {
    const every = intervalSchedule(10_000);
    expect(every.firstTick(123_456)).toBe(130_000);
    expect(every.firstTick(130_000)).toBe(140_000);
    // The tick 130 000 ran late, at 165 000.
    expect(every.nextTick(130_000, 165_000, true)).toBe(140_000);
    expect(every.nextTick(130_000, 165_000, false)).toBe(170_000);
    // A tick made due by restartJob (not on the grid) is followed by the next one on it.
    expect(every.nextTick(131_234, 131_300, true)).toBe(140_000);
    expect(every.text).toBe('every 10000 ms');
  });

  it('cron ticks follow the expression in its time zone, with the same catch-up rule', () => {
    const at = (iso: string) => Date.parse(iso);
    const hourly = cronSchedule('0 * * * *', undefined, 'job');
    expect(hourly.firstTick(at('2026-03-01T10:20:00Z'))).toBe(at('2026-03-01T11:00:00Z'));
    expect(hourly.nextTick(at('2026-03-01T11:00:00Z'), at('2026-03-01T13:30:00Z'), true)).toBe(
      at('2026-03-01T12:00:00Z'),
    );
    expect(hourly.nextTick(at('2026-03-01T11:00:00Z'), at('2026-03-01T13:30:00Z'), false)).toBe(
      at('2026-03-01T14:00:00Z'),
    );
    const berlin = cronSchedule('0 9 * * *', 'Europe/Berlin', 'job');
    expect(berlin.firstTick(at('2026-01-10T00:00:00Z'))).toBe(at('2026-01-10T08:00:00Z'));
    expect(berlin.text).toBe('cron 0 9 * * * (Europe/Berlin)');
  });

  it('H fields are seeded with the job name, so every process picks the same minute', () => {
    const now = Date.parse('2026-03-01T10:20:00Z');
    expect(cronSchedule('H * * * *', undefined, 'a').firstTick(now)).toBe(
      cronSchedule('H * * * *', undefined, 'a').firstTick(now),
    );
  });
  it('a misspelt time zone is refused naming the timezone field, not the cron expression', () => {
    expect(() => cronSchedule('0 3 * * *', 'Europe/Berln', 'job')).toThrow(
      expect.objectContaining({
        field: 'timezone',
        message: expect.stringMatching(/"Europe\/Berln" is not an IANA time zone/),
      }),
    );
  });
});
