/**
 * `sluice/dashboard`: a web dashboard for queues, buses, jobs, locks and the outbox. `createDashboard` gives a
 * request handler to mount in an existing server; `serveDashboard` runs it on a port of its own (what
 * `sluice dashboard` does).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError } from '../errors.js';
import { createDashboard, type DashboardHandler, type DashboardOptions } from './server.js';

export {
  createDashboard,
  CONTENT_SECURITY_POLICY,
  MAX_MATCHING,
  type DashboardAction,
  type DashboardHandler,
  type DashboardLogEntry,
  type DashboardOptions,
} from './server.js';
export { DashboardError } from '../errors.js';

export interface ServeOptions extends DashboardOptions {
  /** default 8080; 0 picks a free port */
  port?: number;
  /** default 127.0.0.1: reachable from this machine only */
  host?: string;
}

export interface RunningDashboard {
  /** `http://host:port/` */
  url: string;
  server: Server;
  handler: DashboardHandler;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function loopbackHosts(port: number): string[] {
  return ['127.0.0.1', 'localhost', '[::1]'].map((name) => `${name}:${port}`);
}

/**
 * The dashboard on its own HTTP server. On an address other than loopback it needs a token or an authorize
 * hook: payloads (even read-only) and actions must not be reachable from the network by accident. On loopback
 * with neither, it answers only Host names of loopback, so a page of another site cannot reach it through DNS
 * rebinding.
 */
export async function serveDashboard(options: ServeOptions): Promise<RunningDashboard> {
  const { port = 8080, host = '127.0.0.1', ...dashboard } = options;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new ValidationError('port', `port must be a whole number from 0 to 65535, got ${String(port)}`);
  }
  const open = !dashboard.token && !dashboard.authorize;
  if (!LOOPBACK.has(host) && open) {
    throw new ValidationError(
      'host',
      `a dashboard on ${host} is reachable from the network, payloads included: give it a token (--token or ` +
        'SLUICE_DASHBOARD_TOKEN), or an authorize hook',
    );
  }
  const handler = createDashboard(
    open && dashboard.allowedHosts === undefined ? { ...dashboard, allowedHosts: loopbackHosts(port) } : dashboard,
  );
  const server = createServer(handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await handler.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new ValidationError(
      'port',
      code === 'EADDRINUSE'
        ? `port ${port} on ${host} is in use: choose another with --port`
        : `cannot listen on ${host}:${port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = server.address() as AddressInfo;
  if (open && dashboard.allowedHosts === undefined && port === 0) {
    // The port was picked now: the handler learns the Host names it answers from the bound port.
    handler.allowHosts(loopbackHosts(address.port));
  }
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    server,
    handler,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await handler.close();
    },
  };
}
