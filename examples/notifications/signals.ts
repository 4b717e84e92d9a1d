// The signal source of seed 002 (SignalMonitoringService): trading signals for users, made from a seed so
// that a run can be repeated exactly. Some users get far more signals than others (so some pass their
// per-user limit), and now and then the monitor fires the same signal twice (so some are duplicates).

export interface User {
  id: string;
  /** premium users also get SMS */
  premium: boolean;
}

export interface Signal {
  /** position in the source's output, 0-based: unique per emission, a duplicate gets its own */
  seq: number;
  /** the signal's identity: a duplicate repeats the id (and everything else) of an earlier signal */
  id: string;
  userId: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  price: number;
  /** 0..1; 0.8 and above is urgent (HIGH priority) */
  confidence: number;
}

export interface SignalOptions {
  seed: number;
  users: number;
  signals: number;
  /** chance that an emission repeats one of the last few signals (default 0.08) */
  duplicateRate?: number;
}

const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'AMZN', 'GOOG', 'META', 'NFLX'] as const;
/** urgent signals (confidence at least this) are sent with priority HIGH, the others NORMAL */
export const URGENT_CONFIDENCE = 0.8;

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The users and the signals the monitor emits for them, in emission order; the same seed gives the same lists. */
export function makeSignals(options: SignalOptions): { users: User[]; signals: Signal[] } {
  const random = prng(options.seed);
  const users: User[] = [];
  for (let n = 1; n <= options.users; n++) users.push({ id: `user-${n}`, premium: random() < 0.35 });
  // User n is picked with weight 1/n: the first few users get most signals and pass their limit.
  const weights = users.map((_, n) => 1 / (n + 1));
  const totalWeight = weights.reduce((sum, w) => sum + w, 0);
  const pickUser = (): User => {
    let x = random() * totalWeight;
    for (let n = 0; n < users.length; n++) {
      x -= weights[n]!;
      if (x < 0) return users[n]!;
    }
    return users[users.length - 1]!;
  };
  const duplicateRate = options.duplicateRate ?? 0.08;
  const signals: Signal[] = [];
  for (let seq = 0; seq < options.signals; seq++) {
    if (signals.length > 0 && random() < duplicateRate) {
      const recent = signals.slice(-10);
      const original = recent[Math.floor(random() * recent.length)]!;
      signals.push({ ...original, seq });
      continue;
    }
    const symbol = SYMBOLS[Math.floor(random() * SYMBOLS.length)]!;
    signals.push({
      seq,
      id: `sig-${seq}`,
      userId: pickUser().id,
      symbol,
      side: random() < 0.5 ? 'BUY' : 'SELL',
      price: Math.round((50 + random() * 450) * 100) / 100,
      confidence: Math.round((0.55 + random() * 0.44) * 100) / 100,
    });
  }
  return { users, signals };
}

/** The monitor as a stream: yields each signal on its own turn of the event loop, as a live feed would. */
export async function* signalSource(signals: readonly Signal[]): AsyncGenerator<Signal> {
  for (const signal of signals) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    yield signal;
  }
}
