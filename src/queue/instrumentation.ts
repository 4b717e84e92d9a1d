import { ValidationError } from '../errors.js';
import type { Headers } from '../headers.js';
import { describe } from '../keys.js';
import type { Delivery } from './types.js';

/**
 * Hooks a tracer (or anything else that watches messages) plugs into queues, buses and the outbox through
 * their `instrumentation` option; `sluice/telemetry` implements them with OpenTelemetry. sluice itself
 * depends on no tracing library: without the option, the send and handler paths test one field for null
 * and do nothing more.
 */
export interface Instrumentation {
  /**
   * Called when a send, sendMany, publish, publishMany or outbox write starts, before anything is
   * encoded. Returns the headers to add to every message of the call (a trace context) and is told how
   * the call ended; null: nothing to add or report.
   */
  produce(operation: ProduceOperation): ProduceScope | null;
  /** Called when a consumer starts a handler on a delivery; null: nothing to report. */
  process(operation: ProcessOperation): ProcessScope | null;
}

export interface ProduceOperation {
  /** `send` (queue), `publish` (event bus), `create` (an event written to the outbox, published later) */
  operation: 'send' | 'publish' | 'create';
  /** the queue or event bus name */
  destination: string;
  /** true for sendMany and publishMany (even of one message) */
  batch: boolean;
  /** the messages' own headers, in order (undefined: none), for a tracer to link to contexts they carry */
  messages: readonly (Readonly<Headers> | undefined)[];
}

export interface ProduceScope {
  /** added to every message's headers; a name a message already has keeps that message's value */
  readonly headers: Readonly<Headers> | null;
  /** the call ended: with the message (or event) ids written, or with the error it was refused with */
  end(outcome: { ids: readonly string[] } | { error: unknown }): void;
}

export interface ProcessOperation {
  /** the queue name, or for an event subscriber the event bus name */
  destination: string;
  /** the subscriber id of an event subscriber; null for a queue */
  subscription: string | null;
  /** the message id, or for an event subscriber the event id */
  messageId: string;
  /** the headers the message (or event) was sent with */
  headers: Readonly<Headers> | undefined;
  /** 1 on the first delivery, 2 on the first retry, ... */
  deliveryAttempt: number;
  /** an event's correlationId; null for a queue message */
  correlationId: string | null;
  /** the delivery itself (for an event subscriber, its payload is the event) */
  delivery: Delivery<unknown>;
}

export interface ProcessScope {
  /** runs the handler inside the scope (a tracer makes its span the active one) */
  run<R>(handler: () => R): R;
  /** the handler's outcome as the consumer decided it: undefined when acked, else why it was nacked */
  end(error?: unknown): void;
}

/** Checks an `instrumentation` option: an object with `produce` and `process` methods, or nothing. */
export function instrumentationOption(value: unknown): Instrumentation | null {
  if (value === undefined || value === null) return null;
  const hooks = value as Partial<Instrumentation>;
  if (typeof hooks !== 'object' || typeof hooks.produce !== 'function' || typeof hooks.process !== 'function') {
    throw new ValidationError(
      'instrumentation',
      `instrumentation must be an object with produce() and process() methods (such as tracing() from sluice/telemetry), got ${describe(value)}`,
    );
  }
  return guarded(hooks as Instrumentation);
}

let warned = false;
function hookFailed(error: unknown): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `sluice: an instrumentation hook threw (${error instanceof Error ? error.message : String(error)}); ` +
      'the call goes on untraced (this warning is given once per process)',
  );
}

/**
 * The hooks with their failures contained: a hook that throws (a user's propagator, a custom hook) costs the
 * call its tracing, never the send, the publish or the handler run.
 */
function guarded(hooks: Instrumentation): Instrumentation {
  return {
    produce(operation) {
      const inner = attempt(() => hooks.produce(operation));
      return inner && { headers: inner.headers, end: (outcome) => attempt(() => inner.end(outcome)) };
    },
    process(operation) {
      const inner = attempt(() => hooks.process(operation));
      if (!inner) return null;
      return {
        run<R>(handler: () => R): R {
          let entered = false;
          try {
            return inner.run(() => {
              entered = true;
              return handler();
            });
          } catch (error) {
            // The handler's own error is the handler's; a hook that failed before it ran lets it run untraced.
            if (entered) throw error;
            hookFailed(error);
            return handler();
          }
        },
        end: (error) => attempt(() => inner.end(error)),
      };
    },
  };
}

/** A hook's call, its failure reported once and answered null. */
function attempt<R>(call: () => R): R | null {
  try {
    return call();
  } catch (error) {
    hookFailed(error);
    return null;
  }
}
