import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { createDashboard, type DashboardLogEntry, type DashboardOptions } from '../src/dashboard/index.js';
import type { Queue } from '../src/index.js';

export interface TestDashboard {
  /** `http://127.0.0.1:port` (no trailing slash), plus `mount` when mounted under a path */
  origin: string;
  url: string;
  logs: DashboardLogEntry[];
  /** fetch relative to the dashboard's root */
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
}

/**
 * Dashboards on their own HTTP servers on free loopback ports, closed after each test. `mount` serves the
 * handler under a path the way Express's app.use(path, handler) does: request.url stripped of the path,
 * request.originalUrl kept.
 */
export function useDashboards() {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((item) => item.close()));
  });
  return async function start(options: Omit<DashboardOptions, 'log'>, mount = ''): Promise<TestDashboard> {
    const logs: DashboardLogEntry[] = [];
    const handler = createDashboard({ ...options, log: (entry) => logs.push(entry) });
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      if (mount) {
        const url = request.url ?? '/';
        if (!url.startsWith(mount)) {
          response.statusCode = 404;
          response.end('outside the mount');
          return;
        }
        (request as { originalUrl?: string }).originalUrl = url;
        request.url = url.slice(mount.length) || '/';
      }
      handler(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open.push({
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await handler.close();
      },
    });
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const url = `${origin}${mount}/`;
    return {
      origin,
      url,
      logs,
      get: (path, headers = {}) => fetch(`${url}${path}`, { headers, redirect: 'manual' }),
      post: (path, body, headers = {}) =>
        fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...headers },
          body: JSON.stringify(body),
          redirect: 'manual',
        }),
    };
  };
}

/**
 * A queue with something in every state: `orders` holds 2 normal and 1 high ready (the high one with
 * partition key customer-7), 1 delayed an hour; `payments` holds one dead letter (reason "card declined").
 */
export async function seedQueues(queue: (name: string) => Queue<unknown>) {
  const orders = queue('orders');
  const payments = queue('payments');
  const ready = [
    await orders.send({ orderId: 1 }, { type: 'order.created' }),
    await orders.send({ orderId: 2 }, { type: 'order.created' }),
    await orders.send(
      { orderId: 3, note: 'rush' },
      { type: 'order.rush', priority: 'HIGH', partitionKey: 'customer-7' },
    ),
  ];
  const delayed = await orders.send({ orderId: 4 }, { type: 'order.later', delayMs: 3_600_000 });
  const deadId = await payments.send({ paymentId: 9, card: 'visa' }, { type: 'payment.charge' });
  const [delivery] = await payments.dequeue();
  await payments.nack(delivery!, { retry: false, error: 'card declined' });
  return { orders, payments, ready, delayed, deadId };
}

export async function json<T = any>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

export type { Redis };
