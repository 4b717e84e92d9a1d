/**
 * Keeps a lease (a lock, a scheduler run lock) alive while its holder works: renews it about every
 * ttl/3 and fires `signal` once the lease is lost.
 *
 * Lost means the renewal was refused (the lease expired or was taken away), or Redis could not be reached
 * until the TTL counted from the last successful renewal ran out. A transient Redis error is retried on
 * the next beat rather than treated as a loss, because the lease is still ours until its TTL passes.
 */
export class LeaseKeeper {
  private readonly controller = new AbortController();
  private readonly beatMs: number;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** local time by which the lease has surely expired unless renewed */
  private expiresAt: number;

  /**
   * @param renew resolves true when the lease was renewed for `ttlMs`, false when it is no longer held
   * @param lost the abort reason, given the Redis error when the lease ran out while Redis was unreachable
   * @param grantedAt local time taken just before the lease was granted
   */
  constructor(
    private readonly renew: () => Promise<boolean>,
    private readonly ttlMs: number,
    private readonly lost: (cause?: unknown) => Error,
    grantedAt: number,
  ) {
    this.beatMs = Math.max(1, Math.floor(ttlMs / 3));
    this.expiresAt = grantedAt + ttlMs;
    this.schedule();
  }

  /** fires when the lease is lost; its reason is the error made by `lost` */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isLost(): boolean {
    return this.controller.signal.aborted;
  }

  /** Stops renewing (the holder is done); the signal no longer fires. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs = this.beatMs): void {
    if (this.stopped || this.isLost) return;
    this.timer = setTimeout(() => void this.beat(), delayMs);
  }

  private async beat(): Promise<void> {
    const startedAt = Date.now();
    try {
      const renewed = await this.renew();
      if (this.stopped) return;
      if (!renewed) {
        this.controller.abort(this.lost());
        return;
      }
      this.expiresAt = startedAt + this.ttlMs;
    } catch (error) {
      if (this.stopped) return;
      const left = this.expiresAt - Date.now();
      if (left <= 0) {
        this.controller.abort(this.lost(error));
        return;
      }
      // Try again, at the latest when the lease would run out, to report the loss on time.
      this.schedule(Math.min(this.beatMs, left));
      return;
    }
    this.schedule();
  }
}
