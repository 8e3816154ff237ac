// Fakes for the unit tests: a clock whose time moves only when a test says
// so, a token endpoint that answers as realtime-go's does from a room's
// replay log, and transports whose connections the test opens, feeds and
// drops. Nothing here waits on real time: flush() lets the promises the
// fakes resolved run, and FakeClock.advance fires due timers in order.
import { subscribe } from "../src/client.js";

export const EPOCH = 1_780_000_000_000_000; // a µs timestamp, as the log's epochs are
export const START = Date.parse("2030-01-01T00:00:00Z");
export const TOKEN_URL = "https://app.test/api/realtime/token";

/** The names of the scopes the tests use (flags.Scope.Names in Go). */
export const SCOPES = {
  "video-ready": ["video.asset.ready"],
  transcript: ["transcript.ready"],
};

/** flush runs every callback the fakes made ready: setImmediate runs
 * after the microtask queue is empty, so a few rounds settle the chains of
 * awaits that one fake answer sets off. */
export async function flush() {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** FakeClock is a Clock whose now moves only with advance. */
export class FakeClock {
  constructor(now = START) {
    this.t = now;
    this.seq = 0;
    this.timers = new Map();
  }
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const id = ++this.seq;
    this.timers.set(id, { fn, at: this.t + Math.max(0, ms) });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /** pending is how many timers are set. */
  pending() {
    return this.timers.size;
  }
  /** next is the delay until the next timer, or Infinity. */
  next() {
    let at = Infinity;
    for (const t of this.timers.values()) at = Math.min(at, t.at);
    return at - this.t;
  }
  /** advance moves time by ms, firing each due timer in order and
   * letting what it set off run before the next. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, t] of this.timers) if (t.at <= end && (due === null || t.at < due[1].at)) due = [id, t];
      if (due === null) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** World is a room as the server sees it: its mode, its replay log and
 * the token endpoint that answers from them (GET …&v=2 and after=…). */
export class World {
  constructor(clock, { mode = "legacy", room = "vid_1" } = {}) {
    this.clock = clock;
    this.mode = mode;
    // The spec answers a catch-up 404 in legacy mode; true serves it there too.
    this.legacyCatchUp = false;
    this.room = room;
    this.epoch = EPOCH;
    this.head = 0;
    this.log = []; // envelopes, in seq order
    this.truncatedBelow = 0; // seqs at or below it are no longer kept
    this.lifetime = 60_000;
    this.requests = [];
    this.overrides = { token: [], catchup: [] };
    this.gates = { token: null, catchup: null };
    this.inflight = new Set();
    this.nextId = 0;
    this.fetch = this.fetch.bind(this);
  }

  /** publish numbers a message in the log and returns its envelope. */
  publish(name = "video.asset.ready", body = {}) {
    this.head++;
    const env = { body, requestId: `req_${this.head}`, name, id: `msg_${this.epoch}_${this.head}`, seq: this.head, epoch: this.epoch };
    this.log.push(env);
    return env;
  }

  /** newEpoch starts the numbering again, as a log that lost its history does. */
  newEpoch() {
    this.epoch += 1_000_000;
    this.head = 0;
    this.log = [];
  }

  /** next makes the next request of kind answer spec ({status, body} or
   * {error}) instead of the world. */
  next(kind, spec) {
    this.overrides[kind].push(spec);
  }

  /** hold makes requests of kind wait until the returned release is called. */
  hold(kind) {
    let release;
    this.gates[kind] = new Promise((r) => {
      release = r;
    });
    return () => {
      this.gates[kind] = null;
      release();
    };
  }

  ofKind(kind) {
    return this.requests.filter((r) => r.kind === kind);
  }

  tokenAnswer() {
    const expires = new Date(this.clock.now() + this.lifetime).toISOString();
    if (this.mode === "legacy" || this.mode === "shadow") {
      return { transport: "partykit", mode: this.mode, partykit: { host: "localhost:1999", room: this.room, party: "main" }, expires };
    }
    return {
      transport: "inngest", mode: this.mode, channel: "ch_" + this.room, topics: ["video.asset.ready"],
      key: `jwt_${++this.nextId}`, apiBaseUrl: "http://127.0.0.1:8288", expires,
    };
  }

  catchUpAnswer(params) {
    const after = BigInt(params.get("after"));
    const limit = Number(params.get("limit") ?? "100");
    const names = params.get("names")?.split(",") ?? SCOPES[params.get("scope")];
    const kept = this.log.filter((e) => e.seq > this.truncatedBelow);
    const read = kept.filter((e) => BigInt(e.seq) > after).slice(0, limit);
    return {
      messages: read.filter((e) => names.includes(e.name)),
      next: read.length > 0 ? read[read.length - 1].seq : Number(after),
      more: read.length === limit,
      head: this.head,
      epoch: this.head === 0 ? 0 : this.epoch,
      truncated: after < BigInt(this.truncatedBelow) && this.head > 0,
    };
  }

  /** fetch is the token endpoint. */
  async fetch(url, init) {
    const u = new URL(url);
    const kind = u.searchParams.has("after") ? "catchup" : "token";
    const req = { kind, url, params: u.searchParams, signal: init?.signal, at: this.clock.now() };
    this.requests.push(req);
    this.inflight.add(req);
    try {
      if (this.gates[kind]) {
        await Promise.race([
          this.gates[kind],
          new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")))),
        ]);
      }
      if (init?.signal?.aborted) throw new DOMException("aborted", "AbortError");
      const o = this.overrides[kind].shift();
      if (o?.error) throw o.error;
      let status = o?.status ?? 200;
      let body = o?.body;
      if (body === undefined && status === 200) {
        if (kind === "token") {
          if (u.searchParams.get("v") !== "2") throw new Error("the client must ask v=2");
          body = this.tokenAnswer();
        } else if (this.mode === "legacy" && !this.legacyCatchUp) {
          status = 404;
          body = { error: "realtime is not enabled for this scope" };
        } else {
          body = this.catchUpAnswer(u.searchParams);
        }
      }
      const headers = new Headers({ "content-type": "application/json", date: new Date(o?.date ?? this.clock.now()).toUTCString() });
      return { status, headers, text: async () => (typeof body === "string" ? body : JSON.stringify(body ?? { error: "x" })) };
    } finally {
      this.inflight.delete(req);
    }
  }
}

/** FakeTransports records each connection the client opens. */
export class FakeTransports {
  constructor() {
    this.conns = [];
    this.transports = {
      inngest: (answer, handlers) => this.make("inngest", answer, handlers),
      partykit: (answer, handlers) => this.make("partykit", answer, handlers),
    };
  }
  make(kind, answer, handlers) {
    const c = {
      kind, answer, handlers, closed: false, opened: false,
      close() {
        c.closed = true;
      },
      open: () => {
        c.opened = true;
        handlers.open();
      },
      send: (env) => handlers.message(kind === "partykit" ? JSON.stringify(env) : env),
      down: () => handlers.down(),
      end: (cause) => handlers.closed(cause),
    };
    this.conns.push(c);
    return c;
  }
  /** last is the newest connection, of kind when given. */
  last(kind) {
    const cs = kind ? this.conns.filter((c) => c.kind === kind) : this.conns;
    return cs[cs.length - 1];
  }
  open() {
    return this.conns.filter((c) => !c.closed);
  }
}

/** start subscribes with the fakes and records what the client reports. */
export async function start({ mode = "legacy", scope = "video-ready", names, tuning, world: make, onMessage } = {}) {
  const clock = new FakeClock();
  const world = new World(clock, { mode });
  make?.(world);
  const t = new FakeTransports();
  const got = [];
  const statuses = [];
  const errors = [];
  const unsubscribe = subscribe(
    world.room,
    (env, info) => {
      got.push({ env, info });
      onMessage?.(env, info);
    },
    {
      tokenUrl: TOKEN_URL, scope, names, fetch: world.fetch, transports: t.transports, clock,
      random: () => 1, // the longest jitter: delays are backoffBase·2^(n-1)
      tuning,
      onStatus: (s) => statuses.push(s),
      onError: (e) => errors.push(e),
    },
  );
  await flush();
  return {
    clock, world, t, got, statuses, errors, unsubscribe,
    ids: () => got.map((g) => g.env.id),
    seqs: () => got.map((g) => g.env.seq),
    resets: () => statuses.filter((s) => s.reset).length,
    status: () => statuses[statuses.length - 1],
  };
}
