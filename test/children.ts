import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A fixture program in its own process, with its IPC messages collected. Used by the tests only. */
export interface Child {
  process: ChildProcess;
  messages: unknown[];
  /** resolves with the first message (already received or later) that `match` accepts */
  message<M>(match: (message: unknown) => message is M, what: string): Promise<M>;
  exited: Promise<number | null>;
  /** asks the child to stop and waits for it to exit */
  stop(): Promise<number | null>;
}

export function startChild(fixture: string, env: Record<string, string>): Child {
  // Tests run from the sources; children run the compiled fixture (npm test builds first).
  const path = fileURLToPath(new URL(`../dist/test/fixtures/${fixture}.js`, import.meta.url));
  const child = fork(path, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: unknown[] = [];
  const waiters = new Set<() => void>();
  child.on('message', (message) => {
    messages.push(message);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    messages,
    exited,
    message<M>(match: (message: unknown) => message is M, what: string): Promise<M> {
      return new Promise<M>((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
        void exited.then((code) => reject(new Error(`child ${fixture} exited (${code}) before sending ${what}`)));
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.send('stop');
      return exited;
    },
  };
}
