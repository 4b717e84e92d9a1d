/**
 * Every error sluice raises is a SluiceError with a stable `code`; catch the class or compare the code.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An argument was refused before anything was written to Redis. `field` names the argument
 * (`payload`, `priority`, `delayMs`, `queue name` ...).
 */
export class ValidationError extends SluiceError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
    this.field = field;
  }
}

/**
 * ack, nack or extend named a delivery that is no longer in flight under that receipt: its visibility
 * deadline passed and it was reclaimed (and maybe handed to another consumer), or it was already acked
 * or nacked. Nothing was changed.
 */
export class StaleReceiptError extends SluiceError {
  readonly messageId: string;
  readonly receipt: string;
  constructor(messageId: string, receipt: string) {
    super(
      'STALE_RECEIPT',
      `message ${messageId} is not in flight under receipt ${receipt}: it was reclaimed after its visibility ` +
        `timeout, or already acked or nacked; nothing was changed`,
    );
    this.messageId = messageId;
    this.receipt = receipt;
  }
}

/** An operation was attempted on a closed Queue or Consumer. */
export class ClosedError extends SluiceError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

/** pause, resume or replay named a subscriber that is not subscribed to the bus. Nothing was changed. */
export class UnknownSubscriberError extends SluiceError {
  readonly bus: string;
  readonly subscriberId: string;
  constructor(bus: string, subscriberId: string) {
    super('UNKNOWN_SUBSCRIBER', `event bus ${bus} has no subscriber ${subscriberId}; subscribe it first`);
    this.bus = bus;
    this.subscriberId = subscriberId;
  }
}
