/**
 * Polls `check` until it returns a truthy value or the deadline passes; for waiting on an outcome that
 * has no event to await. The deadline is generous: it only bounds a failing test. (Free of vitest, so the
 * global setup can use it; test/helpers.ts re-exports it.)
 */
export async function waitFor<R>(
  check: () => R | Promise<R>,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 10,
): Promise<NonNullable<R>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
