import {
  context,
  diag,
  isSpanContextValid,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type {
  Headers,
  Instrumentation,
  ProcessOperation,
  ProcessScope,
  ProduceOperation,
  ProduceScope,
} from '../index.js';

/** The instrumentation scope name of every span sluice makes. */
export const TRACER_NAME = 'sluice';
/** `messaging.system` of every span: sluice is not one of the systems the conventions list, so its own name. */
export const MESSAGING_SYSTEM = 'sluice';

export interface TracingOptions {
  /** the provider to get the tracer from (default: the global one, `trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /**
   * how the trace context is written into message headers and read back (default: the global propagator,
   * which the OpenTelemetry Node SDK sets to W3C trace context and baggage)
   */
  propagator?: TextMapPropagator;
}

/** The API's no-op provider: what the global provider delegates to while no SDK is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

const setter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};
const getter: TextMapGetter<Readonly<Headers>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * OpenTelemetry tracing as sluice instrumentation: pass the result as the `instrumentation` option of a
 * Queue or an EventBus (the outbox traces through its bus). Spans follow the OpenTelemetry messaging
 * conventions:
 * - `send <queue>` / `publish <bus>` (PRODUCER, `messaging.operation.type` send) around send, sendMany,
 *   publish and publishMany, whose context is written into every message's headers; a message that already
 *   carries a context (an outbox row, a forwarded message) keeps it, and the span links to it;
 * - `create <bus>` (PRODUCER, type create) around an outbox write, in the writer's trace: its context is
 *   stored in the row and published with the event;
 * - `process <queue>` / `process <bus>` (CONSUMER, type process) around every handler run, a child of the
 *   context the message carries and linked to it, so that every retry, replay and redelivery joins the
 *   producer's trace; an error status when the handler failed (threw, returned false, timed out).
 * While no SDK is registered (the global provider is the API's no-op one) it does nothing at all: no span,
 * no header, no context passed on; a tracer that records nothing (sampled out) adds only the context.
 */
export function tracing(options: TracingOptions = {}): Instrumentation {
  const given = options.tracerProvider?.getTracer(TRACER_NAME) ?? null;
  const propagator: TextMapPropagator = options.propagator ?? propagation;
  let warned = false;
  let lastProvider: TracerProvider | null = null;
  let lastTracer: Tracer | null = null;

  /**
   * The tracer to use now, or null while the global provider is the API's no-op one (no SDK registered):
   * then nothing is done at all, not even a no-op span. An SDK registered later is picked up.
   */
  function currentTracer(): Tracer | null {
    if (given !== null) return given;
    const provider = trace.getTracerProvider();
    if (provider !== lastProvider) {
      lastProvider = provider;
      const idle = provider instanceof ProxyTracerProvider && provider.getDelegate() === NOOP_PROVIDER;
      lastTracer = idle ? null : provider.getTracer(TRACER_NAME);
    } else if (lastTracer === null && (provider as ProxyTracerProvider).getDelegate?.() !== NOOP_PROVIDER) {
      lastTracer = provider.getTracer(TRACER_NAME);
    }
    return lastTracer;
  }

  function produce(operation: ProduceOperation): ProduceScope | null {
    const tracer = currentTracer();
    if (tracer === null) return null;
    const count = operation.messages.length;
    const attributes: Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.destination.name': operation.destination,
      'messaging.operation.type': operation.operation === 'create' ? 'create' : 'send',
      'messaging.operation.name': operation.operation,
    };
    if (count !== 1) attributes['messaging.batch.message_count'] = count;
    let links: Link[] | undefined;
    for (const headers of operation.messages) {
      if (headers === undefined) continue;
      const creation = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, getter));
      if (creation && isSpanContextValid(creation)) (links ??= []).push({ context: creation });
    }
    const parent = context.active();
    const span = tracer.startSpan(
      `${operation.operation} ${operation.destination}`,
      { kind: SpanKind.PRODUCER, attributes, ...(links ? { links } : {}) },
      parent,
    );
    if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return null;
    const headers: Headers = {};
    propagator.inject(trace.setSpan(parent, span), headers, setter);
    let added: Headers | null = headers;
    if (Object.keys(headers).length === 0) {
      added = null;
      if (!warned) {
        warned = true;
        diag.warn(
          'sluice tracing: the propagator wrote no headers, so trace context will not travel with messages; ' +
            'register a propagator (the Node SDK does) or pass one to tracing({ propagator })',
        );
      }
    }
    return {
      headers: added,
      end(outcome) {
        if ('error' in outcome) failed(span, outcome.error);
        else if (outcome.ids.length === 1) span.setAttribute('messaging.message.id', outcome.ids[0]!);
        span.end();
      },
    };
  }

  function processRun(operation: ProcessOperation): ProcessScope | null {
    const tracer = currentTracer();
    if (tracer === null) return null;
    const active = context.active();
    const extracted: Context =
      operation.headers === undefined ? active : propagator.extract(active, operation.headers, getter);
    const creation = operation.headers === undefined ? undefined : trace.getSpanContext(extracted);
    const attributes: Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.destination.name': operation.destination,
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': operation.messageId,
      'messaging.sluice.message.delivery_attempt': operation.deliveryAttempt,
    };
    if (operation.subscription !== null) attributes['messaging.destination.subscription.name'] = operation.subscription;
    if (operation.correlationId !== null) attributes['messaging.message.conversation_id'] = operation.correlationId;
    const hasCreation = creation !== undefined && isSpanContextValid(creation);
    const span = tracer.startSpan(
      `process ${operation.destination}`,
      { kind: SpanKind.CONSUMER, attributes, ...(hasCreation ? { links: [{ context: creation }] } : {}) },
      extracted,
    );
    if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return null;
    const scope = trace.setSpan(extracted, span);
    return {
      run: (handler) => context.with(scope, handler),
      end(error) {
        if (error !== undefined) failed(span, error);
        span.end();
      },
    };
  }

  return { produce, process: processRun };
}

function failed(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.setAttribute('error.type', error instanceof Error ? error.constructor.name : 'Error');
  if (error instanceof Error) span.recordException(error);
}
