// The public surface of sluice/service: the seed system's QueueService on sluice's public API. It is its
// own entry (as sluice/outbox) because it is built on `sluice` itself: exporting it from src/index.ts would
// make an import cycle. It loads the outbox (and mysql2) only when initialize() is given `mysql`.
export {
  QueueService,
  MessagePriority,
  EventType,
  SERVICE_BUS_NAME,
  defaultOutboxTable,
  type QueueServiceOptions,
  type QueueMessage,
  type SeedEvent,
  type MessageHandler,
  type EventCallback,
  type SendMessageOptions,
  type PublishEventOptions,
  type PublishEventWithTransactionOptions,
  type ServiceStats,
} from './service.js';
export { AlreadyInitializedError, NotInitializedError, OutboxNotConfiguredError } from '../errors.js';
