import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { SCRIPTS, type ScriptName } from '../src/scripts.js';

/**
 * A TCP proxy on 127.0.0.1 in front of a Redis, for fault-injection tests. It can:
 * - lose the reply of one chosen command: the command reaches Redis, Redis answers (the proof that it
 *   ran), the answer is thrown away and the client's connection is cut. ioredis then reconnects and
 *   re-sends the unanswered command (autoResendUnfulfilledCommands, on by default): the same request
 *   reaches Redis twice, as it does in production when a connection drops at the wrong moment;
 * - hold one chosen command before it reaches Redis (it and every later command of its connection), until
 *   released or until the connection ends: a commit stuck in a slow network, or one that never arrives
 *   because its process was killed;
 * - drop every connection now;
 * - refuse new connections until told to accept again.
 *
 * It reads RESP2 on both sides, to know which reply answers which command (so it is not for pub/sub
 * connections, whose pushed messages answer no command). While a chosen command waits
 * for its reply, later commands of that connection are held back: when the reply is lost, they have not
 * reached Redis (ioredis re-sends them too), so exactly one command ran without its caller knowing.
 */

export interface LoseReplyOptions {
  /** picks the command; gets its arguments, the command name first (see `scriptCall`) */
  command: (args: Buffer[]) => boolean;
  /**
   * picks the reply to lose, given its raw RESP bytes (default: any reply but an error, since an error
   * such as NOSCRIPT proves nothing ran). A command whose reply is not picked is answered normally and
   * the proxy stays armed for the next matching command.
   */
  reply?: (reply: Buffer) => boolean;
  /** after cutting the connection, refuse new ones until `accept()` (to act while the client is away) */
  refuseAfter?: boolean;
}

export interface HoldOptions {
  /** picks the command to hold; gets its arguments, the command name first (see `scriptCall`) */
  command: (args: Buffer[]) => boolean;
}

/** An armed hold. `held` resolves once a command was caught (it has not reached Redis). */
export interface HeldCommand {
  readonly held: Promise<void>;
  /** sends the held command and those behind it to Redis, in order (nothing, if its connection ended) */
  release(): void;
  /** disarm without holding (a command already held stays held until release or its connection ends) */
  cancel(): void;
}

interface ArmedHold {
  options: HoldOptions;
  hold(pipe: Pipe): void;
}

/** An armed fault. `fired` resolves with the lost command's name once its reply was thrown away. */
export interface LostReply {
  readonly fired: Promise<string>;
  readonly hasFired: boolean;
  /** disarm without firing */
  cancel(): void;
}

interface Armed {
  options: LoseReplyOptions;
  fire(command: string): void;
}

/** Where one complete RESP value starting at `at` ends, or -1 if `buf` does not hold all of it yet. */
function respEnd(buf: Buffer, at: number): number {
  if (at >= buf.length) return -1;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return -1;
  const type = String.fromCharCode(buf[at]!);
  const n = Number(buf.toString('latin1', at + 1, eol));
  const next = eol + 2;
  switch (type) {
    case '+':
    case '-':
    case ':':
      return next;
    case '$':
      if (n < 0) return next;
      return buf.length >= next + n + 2 ? next + n + 2 : -1;
    case '*': {
      let end = next;
      for (let i = 0; i < n; i++) {
        end = respEnd(buf, end);
        if (end < 0) return -1;
      }
      return end;
    }
    default:
      throw new Error(`proxy: unexpected RESP type ${JSON.stringify(type)} (only RESP2 is supported)`);
  }
}

/** The arguments of a command (an array of bulk strings, as ioredis sends them). */
function commandArgs(buf: Buffer): Buffer[] {
  const args: Buffer[] = [];
  let at = buf.indexOf('\r\n') + 2;
  while (at < buf.length) {
    const eol = buf.indexOf('\r\n', at);
    const length = Number(buf.toString('latin1', at + 1, eol));
    args.push(buf.subarray(eol + 2, eol + 2 + length));
    at = eol + 2 + length + 2;
  }
  return args;
}

/** A predicate for `loseReply`: a call of this sluice script (EVALSHA, or EVAL on a connection's first call). */
export function scriptCall(name: ScriptName): (args: Buffer[]) => boolean {
  const script = SCRIPTS.get(name);
  if (!script) throw new Error(`proxy: no script lua/${name}.lua`);
  const sha = createHash('sha1').update(script.lua).digest('hex');
  const lua = Buffer.from(script.lua);
  return (args) => {
    const command = args[0]?.toString().toLowerCase();
    if (command === 'evalsha') return args[1]?.toString() === sha;
    return command === 'eval' && args[1] !== undefined && args[1].equals(lua);
  };
}

/** One client connection and its connection to Redis. */
class Pipe {
  private commandBytes: Buffer = Buffer.alloc(0);
  private replyBytes: Buffer = Buffer.alloc(0);
  private sent = 0;
  private answered = 0;
  /** the index of the chosen command whose reply is awaited, and the commands held back meanwhile */
  private waiting: { index: number; name: string; armed: Armed } | null = null;
  private held: Buffer[] = [];
  /** a command caught by a hold: it and every later command wait in `held` until released */
  private paused = false;
  private cut = false;

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    private readonly proxy: FaultProxy,
  ) {
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    server.on('data', (chunk: Buffer) => this.fromServer(chunk));
    const end = () => this.destroy();
    for (const socket of [client, server]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  /** Cuts both connections; `last` is written to the client first (replies it should still get). */
  destroy(last?: Buffer): void {
    if (this.cut) return;
    this.cut = true;
    this.server.destroy();
    if (last && last.length > 0) this.client.end(last);
    else this.client.destroy();
    this.proxy.forget(this);
  }

  private fromClient(chunk: Buffer): void {
    if (this.cut) return;
    this.commandBytes = this.commandBytes.length === 0 ? chunk : Buffer.concat([this.commandBytes, chunk]);
    let at = 0;
    for (let end; (end = respEnd(this.commandBytes, at)) >= 0; at = end) {
      const command = this.commandBytes.subarray(at, end);
      if (this.waiting || this.paused) {
        this.held.push(command);
        continue;
      }
      this.forward(command);
    }
    this.commandBytes = this.commandBytes.subarray(at);
  }

  /** Sends the commands held by a hold, in order (unless the connection ended meanwhile). */
  resume(): void {
    this.paused = false;
    if (this.cut) return;
    this.forwardHeld();
  }

  /** Forwards held commands until one must wait again (a reply to lose, or a hold). */
  private forwardHeld(): void {
    const held = this.held;
    this.held = [];
    for (let n = 0; n < held.length; n++) {
      if (this.waiting || this.paused) {
        this.held.push(...held.slice(n));
        break;
      }
      this.forward(held[n]!);
    }
  }

  private forward(command: Buffer): void {
    const holding = this.proxy.holding;
    if (holding && holding.options.command(commandArgs(command))) {
      this.proxy.holding = null;
      this.paused = true;
      this.held.push(command);
      holding.hold(this);
      return;
    }
    const index = this.sent++;
    const armed = this.proxy.armed;
    if (armed) {
      const args = commandArgs(command);
      if (armed.options.command(args)) this.waiting = { index, name: args[0]!.toString().toLowerCase(), armed };
    }
    this.server.write(command);
  }

  private fromServer(chunk: Buffer): void {
    if (this.cut) return;
    this.replyBytes = this.replyBytes.length === 0 ? chunk : Buffer.concat([this.replyBytes, chunk]);
    let at = 0;
    let from = 0; // start of the replies not yet passed on
    for (let end; (end = respEnd(this.replyBytes, at)) >= 0; at = end) {
      const index = this.answered++;
      if (this.waiting?.index !== index) continue;
      const reply = this.replyBytes.subarray(at, end);
      const { armed } = this.waiting;
      const pick = armed.options.reply ?? ((bytes: Buffer) => bytes[0] !== 0x2d); /* '-': an error, nothing ran */
      // Still armed with the same fault (it was not cancelled, nor fired on another connection)?
      if (this.proxy.armed === armed && pick(reply)) {
        // The command ran: pass on the replies before it, lose this one and cut the connection.
        this.proxy.armed = null;
        if (armed.options.refuseAfter) this.proxy.refuse();
        this.destroy(this.replyBytes.subarray(from, at));
        armed.fire(this.waiting.name);
        return;
      }
      // Not the reply to lose: answer it, then send what was held back (which may hold the next candidate).
      this.client.write(this.replyBytes.subarray(from, end));
      from = end;
      this.waiting = null;
      this.forwardHeld();
    }
    this.client.write(this.replyBytes.subarray(from, at));
    this.replyBytes = this.replyBytes.subarray(at);
  }
}

export class FaultProxy {
  /** the fault waiting to happen, if any (internal: use loseReply) */
  armed: Armed | null = null;
  /** the hold waiting for its command, if any (internal: use holdCommand) */
  holding: ArmedHold | null = null;
  private readonly pipes = new Set<Pipe>();
  private refusing = false;
  private faults = 0;
  private refusals = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly target: { host: string; port: number },
  ) {}

  /** Starts a proxy on a free port of 127.0.0.1 forwarding to `target` (a redis:// URL or host and port). */
  static async start(target: string | { host: string; port: number }): Promise<FaultProxy> {
    const to =
      typeof target === 'string'
        ? { host: new URL(target).hostname, port: Number(new URL(target).port || 6379) }
        : target;
    const server = createServer({ noDelay: true }, (client) => proxy.onConnection(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new FaultProxy(server, (server.address() as { port: number }).port, to);
    return proxy;
  }

  /** `redis://127.0.0.1:<port>`: a URL a user would pass as `connection` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** how many replies were lost so far */
  get faultCount(): number {
    return this.faults;
  }

  /** connections refused so far (see refuse) */
  get refusedCount(): number {
    return this.refusals;
  }

  /** connections open through the proxy now */
  get connectionCount(): number {
    return this.pipes.size;
  }

  /** Arms a lost reply for the next command `options.command` picks (one at a time; replaces an unfired one). */
  loseReply(options: LoseReplyOptions): LostReply {
    let fire!: (command: string) => void;
    let hasFired = false;
    const fired = new Promise<string>((resolve) => (fire = resolve));
    const armed: Armed = {
      options,
      fire: (command) => {
        hasFired = true;
        this.faults++;
        fire(command);
      },
    };
    this.armed = armed;
    return {
      fired,
      get hasFired() {
        return hasFired;
      },
      cancel: () => {
        if (this.armed === armed) this.armed = null;
      },
    };
  }

  /**
   * Arms a hold for the next command `options.command` picks (one at a time; replaces an unfired one): that
   * command and every later one of its connection wait in the proxy, not sent to Redis, until `release()`.
   * If the connection ends first (its process killed), they never reach Redis.
   */
  holdCommand(options: HoldOptions): HeldCommand {
    let caught!: () => void;
    const held = new Promise<void>((resolve) => (caught = resolve));
    let pipe: Pipe | null = null;
    const armed: ArmedHold = {
      options,
      hold: (by) => {
        pipe = by;
        caught();
      },
    };
    this.holding = armed;
    return {
      held,
      release: () => {
        if (this.holding === armed) this.holding = null;
        pipe?.resume();
      },
      cancel: () => {
        if (this.holding === armed) this.holding = null;
      },
    };
  }

  /** Removes the armed fault and hold, if any. */
  disarm(): void {
    this.armed = null;
    this.holding = null;
  }

  /** Cuts every connection now, in the middle of whatever they were doing. */
  dropAll(): void {
    for (const pipe of [...this.pipes]) pipe.destroy();
  }

  /** New connections are closed at once until accept(); open ones are untouched. */
  refuse(): void {
    this.refusing = true;
  }

  accept(): void {
    this.refusing = false;
  }

  private onConnection(client: Socket): void {
    if (this.refusing) {
      this.refusals++;
      client.destroy();
      return;
    }
    // Writes to Redis before it is connected are queued by the socket.
    const server = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    this.pipes.add(new Pipe(client, server, this));
  }

  forget(pipe: Pipe): void {
    this.pipes.delete(pipe);
  }

  /** Drops every connection and stops listening. */
  async close(): Promise<void> {
    this.disarm();
    this.dropAll();
    this.server.close();
    await once(this.server, 'close');
  }
}
