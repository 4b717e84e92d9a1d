import { ClosedError, QueueFullError, ValidationError } from '../errors.js';
import { describe } from '../keys.js';
import { requireDuration, requireInteger } from '../validate.js';
import { MAX_BATCH, sendCall, sentIds, type SendMessage } from './validate.js';

/** What a send does when its queue is at maxLength: refuse at once, or wait up to fullWaitMs for room. */
export type WhenFull = 'reject' | 'wait';

export interface BackpressureOptions {
  /** most messages outstanding (sent, not yet acked or dead-lettered); a send beyond it is refused */
  maxLength?: number;
  /** at maxLength: `'reject'` (default) raises QueueFullError, `'wait'` waits for room up to fullWaitMs */
  whenFull?: WhenFull;
  /** with whenFull 'wait': how long a send waits for room before QueueFullError (default 30 s) */
  fullWaitMs?: number;
}

export const DEFAULT_FULL_WAIT_MS = 30_000;
const MAX_FULL_WAIT_MS = 3600_000;
/** A waiting send is tried again after this long, doubling up to the cap (with jitter). */
const RETRY_BASE_MS = 10;
const RETRY_CAP_MS = 250;
/** send.lua's reply: a count when every message was written under its own id, else one id (or code) each */
type Reply = number | (string | number)[];
/** runs send.lua with these arguments, which carry `messages` */
type Call = (args: (string | number)[], messages: readonly SendMessage[]) => Promise<Reply>;

interface Waiting {
  messages: SendMessage[];
  /** 'each': one single send; 'all': a sendMany, written whole or not at all */
  mode: 'each' | 'all';
  deadline: number;
  resolve(ids: string[]): void;
  reject(error: unknown): void;
}

/**
 * The maxLength of one Queue object: the two send.lua arguments that carry it, and the sends waiting for
 * room (whenFull 'wait'). Created only for a queue with a maxLength, so other queues' sends cost nothing.
 *
 * Waiting sends are tried again, in the order they were made, with a backoff from 10 ms to 250 ms; the first
 * one refused ends a round, so a later send never overtakes an earlier waiting one. Nothing wakes them on
 * acks: that would cost every ack a command.
 */
export class SendLimit {
  private readonly waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private trying = false;
  private closed = false;

  constructor(
    readonly queueName: string,
    readonly maxLength: number,
    readonly whenFull: WhenFull,
    readonly fullWaitMs: number,
    private readonly call: Call,
  ) {}

  /** The options of a Queue, checked; null without a maxLength. */
  static from(queueName: string, options: BackpressureOptions, call: Call): SendLimit | null {
    const { maxLength, whenFull, fullWaitMs } = options;
    if (maxLength === undefined) {
      if (whenFull !== undefined) throw new ValidationError('whenFull', 'whenFull needs a maxLength');
      if (fullWaitMs !== undefined) throw new ValidationError('fullWaitMs', 'fullWaitMs needs a maxLength');
      return null;
    }
    const limit = requireInteger('maxLength', maxLength, 1, Number.MAX_SAFE_INTEGER);
    if (whenFull !== undefined && whenFull !== 'reject' && whenFull !== 'wait') {
      throw new ValidationError('whenFull', `whenFull must be 'reject' or 'wait', got ${describe(whenFull)}`);
    }
    if (fullWaitMs !== undefined && whenFull !== 'wait') {
      throw new ValidationError('fullWaitMs', "fullWaitMs applies only with whenFull: 'wait'");
    }
    const wait = requireDuration('fullWaitMs', fullWaitMs ?? DEFAULT_FULL_WAIT_MS, 1, MAX_FULL_WAIT_MS);
    return new SendLimit(queueName, limit, whenFull ?? 'reject', wait, call);
  }

  /** The arguments of one send.lua call with this limit and mode. */
  withLimit(messages: readonly SendMessage[], mode: 'each' | 'all'): (string | number)[] {
    return sendCall(messages, { maxLength: this.maxLength, mode });
  }

  /** Whether sends are waiting: a new one lines up behind them. */
  get hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /** Sends refused by send.lua (one, or a sendMany's): rejected, or waiting for room. */
  refused(
    messages: SendMessage[],
    mode: 'each' | 'all',
    resolve: (ids: string[]) => void,
    reject: (e: unknown) => void,
    startedAt = Date.now(),
  ): void {
    if (this.whenFull === 'reject') {
      reject(this.fullError(mode, messages));
      return;
    }
    this.line(messages, mode, resolve, reject, startedAt);
  }

  /** Queues a send behind those waiting (its first try is the next round). */
  line(
    messages: SendMessage[],
    mode: 'each' | 'all',
    resolve: (ids: string[]) => void,
    reject: (e: unknown) => void,
    startedAt = Date.now(),
  ): void {
    if (this.closed) {
      reject(new ClosedError(`queue ${this.queueName}`));
      return;
    }
    this.waiting.push({ messages, mode, deadline: startedAt + this.fullWaitMs, resolve, reject });
    this.schedule();
  }

  /** sendMany with a maxLength: written whole, or refused (or waiting) whole. */
  async sendMany(messages: SendMessage[]): Promise<string[]> {
    const startedAt = Date.now();
    if (!this.hasWaiting) {
      const reply = await this.call(this.withLimit(messages, 'all'), messages);
      if (!refusedWhole(reply)) return sentIds(reply, messages) as string[];
    }
    return new Promise<string[]>((resolve, reject) =>
      this.hasWaiting
        ? this.line(messages, 'all', resolve, reject, startedAt)
        : this.refused(messages, 'all', resolve, reject, startedAt),
    );
  }

  /** Rejects the sends still waiting: the queue is closing. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const entry of this.waiting.splice(0)) {
      entry.reject(
        new ClosedError(`queue ${this.queueName}`, 'a send waiting for room in the full queue was not written'),
      );
    }
  }

  private fullError(mode: 'each' | 'all', messages: readonly SendMessage[], waited?: number): QueueFullError {
    const parts: string[] = [];
    if (mode === 'all') parts.push(`the ${messages.length} messages of sendMany do not all fit`);
    if (waited !== undefined) parts.push(`still after waiting ${waited} ms (fullWaitMs)`);
    return new QueueFullError(
      this.queueName,
      this.maxLength,
      parts.join(', ') || undefined,
      waited === undefined ? 'reject' : 'wait',
    );
  }

  private schedule(): void {
    if (this.timer || this.trying || this.waiting.length === 0 || this.closed) return;
    const soonest = Math.min(...this.waiting.map((entry) => entry.deadline));
    const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.round();
      },
      Math.max(0, Math.min(backoff, soonest - Date.now())),
    );
  }

  /** Tries the waiting sends in order until one is refused; those past their deadline fail. */
  private async round(): Promise<void> {
    this.trying = true;
    try {
      const now = Date.now();
      for (let n = this.waiting.length - 1; n >= 0; n--) {
        const entry = this.waiting[n]!;
        if (entry.deadline <= now) {
          this.waiting.splice(n, 1);
          entry.reject(this.fullError(entry.mode, entry.messages, this.fullWaitMs));
        }
      }
      while (this.waiting.length > 0 && !this.closed) {
        const group = this.waiting[0]!.mode === 'all' ? [this.waiting[0]!] : this.leadingSingles();
        const messages: SendMessage[] = [];
        for (const entry of group) for (const message of entry.messages) messages.push(message);
        let reply: Reply;
        try {
          reply = await this.call(this.withLimit(messages, group[0]!.mode), messages);
        } catch (error) {
          for (const entry of group) this.remove(entry).reject(error);
          continue;
        }
        if (group[0]!.mode === 'all') {
          if (refusedWhole(reply)) break;
          this.remove(group[0]!).resolve(sentIds(reply, messages) as string[]);
          this.attempt = 0;
          continue;
        }
        let refused = false;
        const ids = sentIds(reply, messages);
        group.forEach((entry, n) => {
          const id = ids[n];
          if (typeof id === 'number') refused = true;
          else this.remove(entry).resolve([id!]);
        });
        if (refused) break;
        this.attempt = 0;
      }
    } finally {
      this.trying = false;
    }
    this.schedule();
  }

  private leadingSingles(): Waiting[] {
    const group: Waiting[] = [];
    for (const entry of this.waiting) {
      if (entry.mode !== 'each' || group.length >= MAX_BATCH) break;
      group.push(entry);
    }
    return group;
  }

  private remove(entry: Waiting): Waiting {
    const at = this.waiting.indexOf(entry);
    if (at >= 0) this.waiting.splice(at, 1);
    return entry;
  }
}

/** A sendMany's reply when it did not fit: every message refused (a code in place of each id). */
function refusedWhole(reply: Reply): boolean {
  return typeof reply !== 'number' && typeof reply[0] === 'number';
}
