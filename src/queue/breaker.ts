import { ValidationError } from '../errors.js';
import { checkOptions, optionNames, requireDuration, requireInteger } from '../validate.js';
import { describe } from '../keys.js';

/**
 * A consumer's circuit breaker (seed 003's pattern, as Resilience4j's count-based one). Local state of one
 * consumer: it decides only whether this consumer fetches, so it needs no script.
 */
export interface CircuitBreakerOptions {
  /** failed share of the window, above 0 and at most 1, at which the circuit opens (default 0.5) */
  failureRate?: number;
  /** outcomes remembered: the last N handler outcomes (default 20) */
  windowSize?: number;
  /** outcomes needed in the window before the circuit may open, at most windowSize (default 10) */
  minimumCalls?: number;
  /** how long the circuit stays open before probing (default 30 s) */
  coolDownMs?: number;
  /** messages taken while half-open; all must succeed to close the circuit (default 1) */
  halfOpenProbes?: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * The argument of `circuitOpen`, `circuitHalfOpen` and `circuitClosed`. `failures` and `calls` are the
 * outcomes that decided the transition: the window (closed → open) or the probes (half-open → open or closed);
 * `circuitHalfOpen` repeats those that opened the circuit. `nextProbeAt` (ms since the epoch) is when an open
 * circuit goes half-open; null in the other states.
 */
export interface CircuitEvent {
  state: CircuitState;
  failures: number;
  calls: number;
  failureRate: number;
  nextProbeAt: number | null;
}

const CIRCUIT_BREAKER_OPTIONS = optionNames<CircuitBreakerOptions>({
  failureRate: true,
  windowSize: true,
  minimumCalls: true,
  coolDownMs: true,
  halfOpenProbes: true,
});
/** most outcomes in a window, and most probes */
const MAX_COUNT = 10_000;
const MAX_COOL_DOWN_MS = 24 * 3600_000;

/**
 * Counts handler outcomes in a ring of the last `windowSize`, and says how many messages the consumer may
 * take. Outcomes are counted per epoch (a new one at every transition): the outcome of a handler started
 * before the circuit opened, or before it closed again, is not counted in the state it finishes in.
 */
export class CircuitBreaker {
  state: CircuitState = 'closed';
  /** increases at every transition; a handler's outcome counts only in the epoch it started in */
  epoch = 0;
  nextProbeAt: number | null = null;
  private readonly ring: Uint8Array;
  private next = 0;
  private calls = 0;
  private failures = 0;
  private probesTaken = 0;
  private probesPassed = 0;
  private last: CircuitEvent | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** the consumer is closing: no more transitions */
  private stopped = false;

  private constructor(
    readonly failureRate: number,
    readonly windowSize: number,
    readonly minimumCalls: number,
    readonly coolDownMs: number,
    readonly halfOpenProbes: number,
    private readonly changed: (event: CircuitEvent) => void,
  ) {
    this.ring = new Uint8Array(windowSize);
  }

  /** The consumer's `circuitBreaker` option, checked; null without one (the consumer never checks a breaker). */
  static from(value: unknown, changed: (event: CircuitEvent) => void): CircuitBreaker | null {
    if (value === undefined) return null;
    const options = checkOptions<CircuitBreakerOptions>(
      value,
      CIRCUIT_BREAKER_OPTIONS,
      'consume(handler, options).circuitBreaker',
      'circuitBreaker',
    );
    const failureRate = options.failureRate ?? 0.5;
    if (typeof failureRate !== 'number' || !(failureRate > 0 && failureRate <= 1)) {
      throw new ValidationError(
        'circuitBreaker.failureRate',
        `circuitBreaker.failureRate must be a number above 0 and at most 1 (0.5 opens at half failed), got ${describe(failureRate)}`,
      );
    }
    const windowSize = requireInteger('circuitBreaker.windowSize', options.windowSize ?? 20, 1, MAX_COUNT);
    const minimumCalls = requireInteger(
      'circuitBreaker.minimumCalls',
      options.minimumCalls ?? Math.min(10, windowSize),
      1,
      MAX_COUNT,
    );
    if (minimumCalls > windowSize) {
      throw new ValidationError(
        'circuitBreaker.minimumCalls',
        `circuitBreaker.minimumCalls (${minimumCalls}) must be at most windowSize (${windowSize}): the window never holds more`,
      );
    }
    const coolDownMs = requireDuration('circuitBreaker.coolDownMs', options.coolDownMs ?? 30_000, 1, MAX_COOL_DOWN_MS);
    const halfOpenProbes = requireInteger('circuitBreaker.halfOpenProbes', options.halfOpenProbes ?? 1, 1, MAX_COUNT);
    return new CircuitBreaker(failureRate, windowSize, minimumCalls, coolDownMs, halfOpenProbes, changed);
  }

  /** How many more messages may be fetched now: all when closed, none when open, the probes left when half-open. */
  get fetchable(): number {
    if (this.state === 'closed') return Infinity;
    return this.state === 'open' ? 0 : this.halfOpenProbes - this.probesTaken;
  }

  /** Of `count` deliveries just fetched, how many may start (the rest go back to the queue). */
  admit(count: number): number {
    if (this.state === 'closed') return count;
    if (this.state === 'open') return 0;
    const taken = Math.min(count, this.halfOpenProbes - this.probesTaken);
    this.probesTaken += taken;
    return taken;
  }

  /** A handler's outcome: `failed` when it threw, returned false or timed out. */
  record(epoch: number, failed: boolean): void {
    if (epoch !== this.epoch || this.stopped) return;
    if (this.state === 'closed') {
      if (this.calls === this.windowSize) this.failures -= this.ring[this.next]!;
      else this.calls++;
      this.ring[this.next] = failed ? 1 : 0;
      if (failed) this.failures++;
      this.next = this.next + 1 === this.windowSize ? 0 : this.next + 1;
      if (this.calls >= this.minimumCalls && this.failures / this.calls >= this.failureRate) {
        this.toOpen(this.failures, this.calls);
      }
    } else if (this.state === 'half-open') {
      if (failed) this.toOpen(1, this.probesPassed + 1);
      else if (++this.probesPassed === this.halfOpenProbes) this.toClosed(this.probesPassed);
    }
  }

  /** The consumer is closing: no more transitions, no timer left behind. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private toOpen(failures: number, calls: number): void {
    this.nextProbeAt = Date.now() + this.coolDownMs;
    // Set before the event: a listener that closes the consumer then clears it.
    this.timer = setTimeout(() => this.toHalfOpen(), this.coolDownMs);
    this.timer.unref();
    this.transition('open', failures, calls);
  }

  private toHalfOpen(): void {
    this.timer = undefined;
    if (this.stopped) return;
    this.probesTaken = 0;
    this.probesPassed = 0;
    this.nextProbeAt = null;
    this.transition('half-open', this.last!.failures, this.last!.calls);
  }

  private toClosed(calls: number): void {
    this.ring.fill(0);
    this.next = 0;
    this.calls = 0;
    this.failures = 0;
    this.transition('closed', 0, calls);
  }

  private transition(state: CircuitState, failures: number, calls: number): void {
    this.state = state;
    this.epoch++;
    this.last = {
      state,
      failures,
      calls,
      failureRate: calls === 0 ? 0 : failures / calls,
      nextProbeAt: this.nextProbeAt,
    };
    this.changed({ ...this.last });
  }
}
