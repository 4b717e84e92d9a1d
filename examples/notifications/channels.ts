// The four delivery channels of seed 002 (in-app, email, SMS, push). In-app notifications are stored in
// MariaDB (store.ts); email, SMS and push stand in for their providers by rendering the text they would
// send. Every channel fails now and then, as real providers do, so that retries and the DLQ have work.
import { createHash } from 'node:crypto';

export const CHANNELS = ['inapp', 'email', 'sms', 'push'] as const;
export type ChannelName = (typeof CHANNELS)[number];

/** The payload of one queue message: one notification for one channel. */
export interface NotificationMessage {
  /** the notification this message delivers (one per signal, shared by its channels) */
  notificationId: string;
  channel: ChannelName;
  userId: string;
  signalId: string;
  title: string;
  body: string;
  data: { symbol: string; side: 'BUY' | 'SELL'; price: number; confidence: number };
  priority: 'HIGH' | 'NORMAL';
}

/** Chance that one attempt of one message fails, per channel. */
export const DEFAULT_FAILURE_RATES: Readonly<Record<ChannelName, number>> = {
  inapp: 0.1,
  email: 0.3,
  sms: 0.5,
  push: 0.4,
};

/**
 * Whether the injected fault hits this attempt (0 = first) of this message. A draw from a seeded hash of
 * (seed, message id, attempt) rather than from one generator in sequence: handlers run concurrently, so the
 * order in which they would draw changes from run to run, while this answer does not.
 */
export function injectsFailure(seed: number, messageId: string, attempt: number, rate: number): boolean {
  const digest = createHash('sha256').update(`${seed}:${messageId}:${attempt}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < rate;
}

export interface DeliveredNotification {
  messageId: string;
  userId: string;
  /** 0 for the first attempt */
  attempt: number;
  /** what the provider was given */
  text: string;
}

export interface InjectedFailure {
  messageId: string;
  userId: string;
  attempt: number;
}

/** Raised by a channel whose provider "failed": the consumer nacks the message and it is retried. */
export class ProviderUnavailableError extends Error {
  constructor(channel: ChannelName, attempt: number) {
    super(`${channel} provider unavailable (injected fault, attempt ${attempt + 1})`);
    this.name = 'ProviderUnavailableError';
  }
}

/** What a channel's provider does with a message, given its id (in-app: store it; the others: render it). */
export type Provider = (messageId: string, message: NotificationMessage) => Promise<string>;

const render: Record<Exclude<ChannelName, 'inapp'>, (message: NotificationMessage) => string> = {
  email: (m) => `To: ${m.userId}\nSubject: ${m.title}\n\n${m.body}`,
  sms: (m) => `${m.title}: ${m.data.symbol} ${m.data.side} @ ${m.data.price.toFixed(2)}`.slice(0, 160),
  push: (m) => JSON.stringify({ title: m.title, body: m.body, data: m.data }),
};

export function renderingProvider(channel: Exclude<ChannelName, 'inapp'>): Provider {
  return async (_messageId, message) => render[channel](message);
}

/** One channel: the provider behind an injected fault, with a log of what it delivered and what failed. */
export class Channel {
  readonly delivered: DeliveredNotification[] = [];
  readonly injected: InjectedFailure[] = [];

  constructor(
    readonly name: ChannelName,
    private readonly provider: Provider,
    private readonly fault: { seed: number; rate: number },
  ) {}

  /** Delivers one message; throws ProviderUnavailableError when the injected fault hits this attempt. */
  async deliver(messageId: string, message: NotificationMessage, attempt: number): Promise<void> {
    if (injectsFailure(this.fault.seed, messageId, attempt, this.fault.rate)) {
      this.injected.push({ messageId, userId: message.userId, attempt });
      throw new ProviderUnavailableError(this.name, attempt);
    }
    const text = await this.provider(messageId, message);
    this.delivered.push({ messageId, userId: message.userId, attempt, text });
  }
}
