// The public surface of sluice/telemetry: OpenTelemetry tracing of queues, buses and the outbox, built on
// sluice's `instrumentation` hooks. Importing it needs @opentelemetry/api (an optional peer dependency);
// `sluice` itself never loads it.
export { tracing, type TracingOptions, TRACER_NAME, MESSAGING_SYSTEM } from './tracing.js';
