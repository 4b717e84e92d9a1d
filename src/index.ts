// The public surface of sluice: a deliberate list, not a barrel.
export { Queue, MAX_BATCH, type QueueOptions, type DequeueResult } from './queue/queue.js';
export {
  Consumer,
  HandlerTimeoutError,
  type ConsumerCloseReport,
  type ConsumerOptions,
  type Handler,
  type HandlerContext,
} from './queue/consumer.js';
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
  type QueueStats,
  type RetryPolicy,
} from './queue/types.js';
export { CorruptRecordError } from './queue/record.js';
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
export { SluiceError, ValidationError, StaleReceiptError, ClosedError, UnknownSubscriberError } from './errors.js';
export { SCRIPTS_VERSION } from './scripts.js';
export { Locks, type LocksOptions, type AcquireOptions, type WithLockOptions, type LockHandle } from './locks/locks.js';
export { Scheduler, type SchedulerOptions, type SchedulerEvents } from './scheduler/scheduler.js';
export type { JobDefinition, JobContext, JobHandler } from './scheduler/job.js';
export type { JobStatus } from './scheduler/status.js';
export {
  BUILTIN_JOB_NAMES,
  DEFAULT_CLEANUP_RETENTION_MS,
  type BuiltinJobsOptions,
  type BuiltinJobsLogger,
} from './scheduler/builtins.js';
export {
  LockNotHeldError,
  LockUnavailableError,
  LockLostError,
  JobNotFoundError,
  JobTimeoutError,
  ConnectionError,
  RedisCommandError,
  type ConnectionFailure,
} from './errors.js';
export { DEFAULT_CONNECT_TIMEOUT_MS } from './connection.js';
