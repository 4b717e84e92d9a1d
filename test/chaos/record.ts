import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * The chaos suite's record of what happened, one JSON array per line in a file per process. Each line is
 * written with one write(2) before the step it records goes on, so the record survives a SIGKILL of the
 * process (the kernel holds it) and a SIGKILL or restart of Redis (it is not kept there).
 *
 * Lines (times are Date.now() ms; every process of the run is on one host, as is Redis):
 * - ['H', role, queueOrLockName, pid]                          header, first line of every file
 * - ['S', key, id, receipt, dequeuedAt, startAt, attempts]     a handler started (dequeuedAt: the dequeue call was made)
 * - ['E', receipt, outcome, at]                                the consumer settled it: ok | threw | timeout
 * - ['A', receipt, acked 1|0, sentAt, doneAt]                  an ack call's answer for it (0: stale receipt)
 * - ['N', receipt, 'retried'|'dead-lettered'|'', sentAt, doneAt]  a nack call's answer ('' stale)
 * - ['X', receipt, extended 1|0, sentAt]                       an extend call's answer
 * - ['R', receipt, released 1|0, sentAt]                       a release call's answer
 * - ['AE'|'NE'|'XE'|'RE', receipt, sentAt, errorAt]            the call failed (connection trouble)
 * - ['T', sentAt, receipt, receipt, ...]                       an ack, nack or release call is about to be sent
 * - ['G', lock, fence, mode, callStart, grantedAt]             a lock was granted (mode withLock | acquire)
 * - ['W', lock, fence, at]                                     a holder wrote to the fenced resource
 * - ['L', lock, fence, how, at]                                a holder stopped: released | lost | expired
 * - ['U', lock, callStart, at]                                 acquire gave up (lock held by someone else)
 * - ['P', eventId, at]  ['PR', eventId, delivered, duplicate 1|0, at]  ['PE', eventId, at]   publish attempts
 */
export type RecordLine = (string | number | null)[];

export class Recorder {
  private fd: number | null;

  constructor(path: string) {
    this.fd = openSync(path, 'a');
  }

  write(line: RecordLine): void {
    if (this.fd === null) return;
    writeSync(this.fd, JSON.stringify(line) + '\n');
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
