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
  /** fires when the lease runs out with no renewal having succeeded, even while one is still pending */
  private expiryTimer: NodeJS.Timeout | null = null;
  private lastError: unknown;
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
    this.armExpiry();
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
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.timer = null;
    this.expiryTimer = null;
  }

  /**
   * A renewal sent while Redis is unreachable waits in the client's offline queue for as long as the client
   * retries (seconds), so the loss is detected by this timer, not by the renewal's failure.
   */
  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => {
        if (this.stopped || this.isLost) return;
        this.controller.abort(
          this.lost(this.lastError ?? new Error('no renewal reached Redis before the TTL ran out')),
        );
      },
      Math.max(0, this.expiresAt - Date.now()),
    );
  }

  private schedule(delayMs = this.beatMs): void {
    if (this.stopped || this.isLost) return;
    // beat() cannot reject: it catches every failure of renew(), and abort() does not throw (Node reports
    // an abort listener's error as an uncaught exception of its own).
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
      this.lastError = undefined;
      this.armExpiry();
    } catch (error) {
      if (this.stopped) return;
      this.lastError = error;
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
