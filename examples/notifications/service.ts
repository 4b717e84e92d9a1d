// NotificationService of seed 002: turns a signal into one queue message per channel, after the user's
// rate limit, with the queue's dedup key keeping one message per (user, signal, channel).
import type { Queue, RateLimiter } from '../../src/index.js';
import type { ChannelName, NotificationMessage } from './channels.js';
import { URGENT_CONFIDENCE, type Signal, type User } from './signals.js';

export interface NotificationServiceOptions {
  queues: Readonly<Record<ChannelName, Queue<NotificationMessage>>>;
  /** the per-user limit (seed 002: 10 notifications per user per minute) */
  limiter: RateLimiter;
  users: readonly User[];
  /** how long a (user, signal, channel) is remembered by its dedup key */
  dedupTtlMs: number;
  /** retries of a failed delivery before its message is dead-lettered */
  maxRetries: number;
}

export type NotifyOutcome =
  | { status: 'rate-limited'; channels: ChannelName[]; retryAfterMs: number }
  | { status: 'accepted'; notificationId: string; queued: ChannelName[]; deduplicated: ChannelName[] };

export class NotificationService {
  private readonly users: ReadonlyMap<string, User>;

  constructor(private readonly options: NotificationServiceOptions) {
    this.users = new Map(options.users.map((user) => [user.id, user]));
  }

  /** In-app always; email and push for everyone here; SMS only for premium users. */
  channelsFor(user: User): ChannelName[] {
    return user.premium ? ['inapp', 'email', 'sms', 'push'] : ['inapp', 'email', 'push'];
  }

  /**
   * Queues the signal's notification on each of the user's channels, unless the user is over the limit.
   * The limit is asked first because the dedup happens in the queue's send: a repeated signal therefore
   * uses one unit of its user's limit, like any other.
   */
  async notify(signal: Signal): Promise<NotifyOutcome> {
    const user = this.users.get(signal.userId);
    if (!user) throw new Error(`signal ${signal.id} names user ${signal.userId}, who is not a known user`);
    const channels = this.channelsFor(user);
    const { allowed, retryAfterMs } = await this.options.limiter.take(user.id);
    if (!allowed) return { status: 'rate-limited', channels, retryAfterMs };

    // Ids from the emission number rather than random uuids, so that a run can be repeated exactly.
    const notificationId = `n${signal.seq}`;
    const verb = signal.side === 'BUY' ? 'buy' : 'sell';
    const priority = signal.confidence >= URGENT_CONFIDENCE ? 'HIGH' : 'NORMAL';
    const outcomes = await Promise.all(
      channels.map(async (channel) => {
        const id = `${notificationId}.${channel}`;
        const message: NotificationMessage = {
          notificationId,
          channel,
          userId: user.id,
          signalId: signal.id,
          title: `${signal.symbol} ${verb} signal`,
          body: `A ${verb} signal fired for ${signal.symbol} at $${signal.price.toFixed(2)} (confidence ${signal.confidence}).`,
          data: { symbol: signal.symbol, side: signal.side, price: signal.price, confidence: signal.confidence },
          priority,
        };
        // A send whose dedup key is still held writes nothing and answers the id of the message that holds
        // it: another id than the one given here is how a duplicate shows.
        const answered = await this.options.queues[channel].send(message, {
          id,
          type: `notification_${channel}`,
          priority,
          partitionKey: user.id,
          maxRetries: this.options.maxRetries,
          dedupKey: `${user.id}:${signal.id}:${channel}`,
          dedupTtlMs: this.options.dedupTtlMs,
        });
        return { channel, duplicate: answered !== id };
      }),
    );
    return {
      status: 'accepted',
      notificationId,
      queued: outcomes.filter((o) => !o.duplicate).map((o) => o.channel),
      deduplicated: outcomes.filter((o) => o.duplicate).map((o) => o.channel),
    };
  }
}
