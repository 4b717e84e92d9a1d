// The public surface of sluice: a deliberate list, not a barrel.
export { Queue, type QueueOptions } from './queue/queue.js';
export type { RequestOptions } from './queue/requester.js';
export { DEFAULT_FULL_WAIT_MS, type BackpressureOptions, type WhenFull } from './queue/backpressure.js';
export { MAX_BATCH } from './queue/validate.js';
export {
  Consumer,
  type ConsumerCloseReport,
  type ConsumerEvents,
  type ConsumerOptions,
  type Handler,
  type HandlerContext,
  type HandlerRun,
} from './queue/consumer.js';
export type { CircuitBreakerOptions, CircuitEvent, CircuitState } from './queue/breaker.js';
export { MAX_IDEMPOTENCY_RETENTION_MS, type IdempotencyOptions } from './queue/idempotency.js';
export {
  Priority,
  type PriorityName,
  type PriorityValue,
  type Message,
  type MessageStatus,
  type MessageInfo,
  type Delivery,
  type DeliveryRef,
  type SendOptions,
  type SendItem,
  type NackItem,
  type NackOptions,
  type NackOutcome,
  type DeadLetter,
  type PeekState,
  type PeekedMessage,
  type PromoteOptions,
  type SearchFilter,
  type SearchOptions,
  type SearchResult,
  type QueueStats,
  type ConsumerInfo,
  type RetryPolicy,
} from './queue/types.js';
export { EventBus, DEFAULT_HISTORY_LIMIT, DEFAULT_DEDUP_WINDOW_MS } from './events/bus.js';
export type {
  Event,
  EventBusOptions,
  EventConsumer,
  EventContext,
  EventFilter,
  EventHandler,
  EventStats,
  FilterCondition,
  FilterValue,
  HistoryEntry,
  HistoryRange,
  PublishItem,
  PublishOptions,
  PublishResult,
  SubscribeOptions,
  Subscription,
} from './events/types.js';
export { toSeedQueueStats, toSeedEventStats, type SeedQueueStats, type SeedEventStats } from './seed-stats.js';
export {
  SluiceError,
  ValidationError,
  StaleReceiptError,
  ClosedError,
  HandlerTimeoutError,
  CorruptRecordError,
  UnknownSubscriberError,
  QueueFullError,
  IdempotencyKeyError,
  RequestTimeoutError,
  RequestFailedError,
} from './errors.js';
export { SCRIPTS_VERSION } from './scripts.js';
export { discover, DEFAULT_SCAN_LIMIT, type DiscoverOptions, type Discovery } from './registry.js';
export { MAX_HEADERS, MAX_HEADERS_BYTES, type Headers } from './headers.js';
export type {
  Instrumentation,
  ProduceOperation,
  ProduceScope,
  ProcessOperation,
  ProcessScope,
} from './queue/instrumentation.js';
export {
  Locks,
  type LocksOptions,
  type AcquireOptions,
  type ExtendOptions,
  type WithLockOptions,
  type LockHandle,
  type LockStatus,
} from './locks/locks.js';
export {
  RateLimiter,
  MAX_RATE_LIMIT,
  MAX_RATE_WINDOW_MS,
  type RateLimiterOptions,
  type TakeOptions,
  type TakeResult,
} from './locks/limiter.js';
export { Scheduler, type SchedulerOptions, type SchedulerEvents } from './scheduler/scheduler.js';
export type { JobDefinition, JobContext, JobHandler, JobLogger } from './scheduler/job.js';
export type { JobStatus } from './scheduler/status.js';
export {
  SCHEDULER_JOB_NAMES,
  DEFAULT_CLEANUP_RETENTION_MS,
  schedulerCleanupJobs,
  type SchedulerCleanupOptions,
} from './scheduler/cleanup.js';
export { QUEUE_JOB_NAMES, queueMaintenanceJobs, type QueueMaintenanceOptions } from './queue/jobs.js';
export {
  LockNotHeldError,
  LockUnavailableError,
  LockLostError,
  JobNotFoundError,
  JobTimeoutError,
  ConnectionError,
  RedisCommandError,
  DurabilityError,
  type ConnectionFailure,
} from './errors.js';
export { DEFAULT_CONNECT_TIMEOUT_MS } from './connection.js';
export { DEFAULT_DURABILITY_TIMEOUT_MS, type DurabilityOptions } from './durability.js';
