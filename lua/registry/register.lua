--[[ registry/register: note that a queue, event bus or lock name is in use under a prefix, for discovery
  (src/registry.ts) without KEYS. The registry is a sorted set per kind under the prefix's own hash tag
  `{prefix:registry/}`, so this script touches that one slot and no queue's; each process calls it once per
  object and connection, pipelined with the object's first command.
  KEYS[1] the registry set of one kind, `{prefix:registry/}:queues` (or :buses, :locks)
  ARGV[1] the name
  Returns: 1 when the name is new to the registry, 0 when it was known (its last-seen time is updated)
  Errors: none; the name is validated by the caller (src/keys.ts).
  Repeat: naturally idempotent: a repeat writes the same name again with a later last-seen time.
]]
--@include "clock"

return redis.call('ZADD', KEYS[1], nowMs(), ARGV[1])
