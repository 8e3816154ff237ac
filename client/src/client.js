// The transport-independent core of the client: it follows the token
// endpoint's answer, keeps one live connection (opening the next before it
// closes the previous), and turns what the transports and the catch-up
// request bring into one stream of envelopes, each id once and, per epoch,
// in seq order. It imports nothing: the transports are passed in, so that
// the tests run it with fakes and the browser bundle with inngest and
// partysocket (see index.js).

/** The after of a positioning catch-up: above every seq, so that the answer
 * has no messages, only the room's head and epoch. */
const POSITION_AFTER = "18446744073709551615";

/** Defaults of the tuning knobs (SubscribeOptions.tuning). */
export const DEFAULTS = Object.freeze({
  /** How many delivered ids are remembered to drop a second copy. */
  seenSize: 4096,
  /** How many out-of-order messages are held while a gap is repaired; the
   * highest seq is dropped beyond it (a catch-up brings it back). */
  holdLimit: 1000,
  /** The limit of each catch-up page (the endpoint allows 1 to 500). */
  catchUpLimit: 100,
  /** Failed catch-ups in a row after which a held gap is given up (reset). */
  maxCatchUpFailures: 5,
  /** Catch-ups in a row that answer but leave a gap, after which it is
   * given up (reset). */
  maxIdleRounds: 3,
  /** First retry delay (ms); each retry doubles it, with jitter. */
  backoffBase: 250,
  /** Longest retry delay (ms). */
  backoffMax: 30000,
  /** Bounds of the delay before the answer is asked again (ms). */
  renewMin: 1000,
  renewMax: 10 * 60 * 1000,
  /** The delay when an answer has no usable expires (ms). */
  renewDefault: 60 * 1000,
  /** How long one request to the token endpoint may take (ms). */
  requestTimeout: 10000,
});

/**
 * RealtimeError is what onError receives. final is true when retrying
 * cannot help (401, 403, 400: the subscription has stopped); status is the
 * HTTP status when the endpoint answered; phase says which step failed.
 */
export class RealtimeError extends Error {
  /**
   * @param {string} message
   * @param {{phase: "token"|"catchup"|"transport"|"callback", status?: number, final?: boolean, cause?: unknown}} detail
   */
  constructor(message, detail) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = "RealtimeError";
    this.phase = detail.phase;
    this.status = detail.status;
    this.final = detail.final === true;
  }
}

/** Statuses after which the same request can never succeed. */
const FINAL_STATUSES = new Set([400, 401, 403]);

/** An envelope's seq or epoch is usable when it is a positive safe integer. */
const isCount = (v) => Number.isSafeInteger(v) && v > 0;

/**
 * decodeEnvelope returns the envelope in data (an object, or its JSON
 * text), or null when data is no envelope (a PartyKit room also carries
 * "<connection id>: <text>" chatter).
 * @param {unknown} data
 */
export function decodeEnvelope(data) {
  let env = data;
  if (typeof env === "string") {
    try {
      env = JSON.parse(env);
    } catch {
      return null;
    }
  }
  if (env === null || typeof env !== "object" || Array.isArray(env)) return null;
  if (typeof env.name !== "string" || env.name === "") return null;
  return env;
}

/**
 * parseAnswer validates a v=2 token answer; it throws a retryable
 * RealtimeError for one it cannot use. An answer without "transport" but
 * with a key (a server that predates v=2) is read as Inngest.
 * @param {any} body
 */
export function parseAnswer(body) {
  const bad = (why) => new RealtimeError(`realtime-client: unusable token answer: ${why}`, { phase: "token" });
  if (body === null || typeof body !== "object") throw bad("not an object");
  const transport = body.transport ?? (typeof body.key === "string" ? "inngest" : undefined);
  const expires = typeof body.expires === "string" ? body.expires : undefined;
  if (transport === "inngest") {
    const { key, channel, topics, apiBaseUrl } = body;
    if (typeof key !== "string" || key === "") throw bad("no key");
    if (typeof channel !== "string" || channel === "") throw bad("no channel");
    if (!Array.isArray(topics) || topics.length === 0 || !topics.every((t) => typeof t === "string")) throw bad("no topics");
    if (apiBaseUrl !== undefined && typeof apiBaseUrl !== "string") throw bad("apiBaseUrl is not a string");
    return {
      transport, mode: typeof body.mode === "string" ? body.mode : "primary", expires,
      names: stringArray(body.names), channel, topics, key, apiBaseUrl,
    };
  }
  if (transport === "partykit") {
    const p = body.partykit;
    if (p === null || typeof p !== "object") throw bad("no partykit");
    if (typeof p.host !== "string" || p.host === "") throw bad("no partykit host");
    if (typeof p.room !== "string" || p.room === "") throw bad("no partykit room");
    if (p.party !== undefined && typeof p.party !== "string") throw bad("partykit party is not a string");
    return {
      transport, mode: typeof body.mode === "string" ? body.mode : "legacy", expires,
      names: stringArray(body.names), partykit: { host: p.host, room: p.room, party: p.party ?? "main" },
    };
  }
  throw bad(`unknown transport ${typeof transport === "string" ? JSON.stringify(transport) : typeof transport}`);
}

function stringArray(v) {
  return Array.isArray(v) && v.every((s) => typeof s === "string") ? v : undefined;
}

/**
 * parseCatchUp validates a catch-up answer.
 * @param {any} body
 */
export function parseCatchUp(body) {
  const bad = (why) => new RealtimeError(`realtime-client: unusable catch-up answer: ${why}`, { phase: "catchup" });
  if (body === null || typeof body !== "object") throw bad("not an object");
  if (!Array.isArray(body.messages)) throw bad("no messages");
  for (const f of ["next", "head", "epoch"]) {
    if (typeof body[f] !== "number" || !(body[f] >= 0)) throw bad(`no ${f}`);
  }
  return {
    messages: body.messages, next: body.next, head: body.head, epoch: body.epoch,
    more: body.more === true, truncated: body.truncated === true,
  };
}

/** The connection an answer asks for: answers with the same key share one. */
function connectionKey(a) {
  if (a.transport === "inngest") return JSON.stringify(["inngest", a.apiBaseUrl ?? "", a.channel, a.topics]);
  return JSON.stringify(["partykit", a.partykit.host, a.partykit.room, a.partykit.party, a.partykit.protocol]);
}

/** A set of the last size ids added. */
class SeenSet {
  constructor(size) {
    this.size = size;
    this.ring = [];
    this.next = 0;
    this.ids = new Set();
  }
  has(id) {
    return this.ids.has(id);
  }
  add(id) {
    if (this.ids.has(id)) return;
    if (this.ring.length < this.size) {
      this.ring.push(id);
    } else {
      this.ids.delete(this.ring[this.next]);
      this.ring[this.next] = id;
      this.next = (this.next + 1) % this.size;
    }
    this.ids.add(id);
  }
}

const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h),
};

/**
 * subscribe is the core of the public subscribe (index.js), with the
 * transports required: options.transports maps "inngest" and "partykit" to
 * a factory (answer, handlers) → {close()}. See dist/index.d.ts for the
 * contract of a transport and of every option.
 * @param {string} room
 * @param {(envelope: any, info: {transport: string, receivedAt: number}) => void} onMessage
 * @param {any} options
 * @returns {() => void} unsubscribe
 */
export function subscribe(room, onMessage, options) {
  if (typeof room !== "string" || room === "") throw new TypeError("realtime-client: room must be a non-empty string");
  if (typeof onMessage !== "function") throw new TypeError("realtime-client: onMessage must be a function");
  const opts = options ?? {};
  if (typeof opts.tokenUrl !== "string" || opts.tokenUrl === "") throw new TypeError("realtime-client: options.tokenUrl is required");
  if (!opts.scope && !(opts.names?.length > 0)) throw new TypeError("realtime-client: options.scope or options.names is required");
  if (!opts.transports) throw new TypeError("realtime-client: options.transports is required");
  const fetchFn = opts.fetch ?? globalThis.fetch?.bind(globalThis);
  if (typeof fetchFn !== "function") throw new TypeError("realtime-client: no fetch available; pass options.fetch");
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const tune = { ...DEFAULTS, ...opts.tuning };
  const names = opts.names?.length > 0 ? [...opts.names] : null;

  let closed = false;
  const timers = new Set();
  const aborts = new Set();

  // Where the browser listens.
  let answer = null; // the last usable answer
  let active = null; // the connection messages come from
  let pending = null; // the next one, opening
  // Whether the endpoint serves catch-up requests. It is asked in every
  // mode; a 404 (the spec's answer in legacy mode) turns it off until an
  // answer brings another mode.
  let catchUpAvailable = false;
  let refusedInMode = null; // the answer's mode when a catch-up was answered 404
  let renewTimer = null;
  let renewing = false;
  let renewAgain = false;
  let tokenFailures = 0;
  let connFailures = 0;
  let status = { state: "connecting", transport: null, mode: null, resets: 0 };

  // What was delivered.
  const seen = new SeenSet(tune.seenSize);
  /** @type {{epoch: number, last: number} | null} the seq up to which the room is known, per epoch */
  let cursor = null;
  let lastDelivered = 0; // the highest seq delivered in the cursor's epoch
  /** @type {Map<number, {env: any, info: any, hidden: boolean}>} out-of-order messages of the cursor's epoch */
  const held = new Map();
  /** @type {{env: any, info: any, hidden: boolean}[]} messages of another epoch, until a catch-up tells which is current */
  let foreign = [];
  const cu = { inflight: false, again: false, timer: null, failures: 0, idle: 0 };

  // --- plumbing -----------------------------------------------------------

  function later(ms, fn) {
    const h = clock.setTimeout(() => {
      timers.delete(h);
      if (!closed) fn();
    }, ms);
    timers.add(h);
    return h;
  }

  function cancel(h) {
    if (h == null) return;
    clock.clearTimeout(h);
    timers.delete(h);
  }

  function backoff(n) {
    const d = Math.min(tune.backoffMax, tune.backoffBase * 2 ** Math.max(0, n - 1));
    return Math.round(d * (0.5 + random() * 0.5));
  }

  function report(err) {
    if (closed) return;
    if (opts.onError) {
      try {
        opts.onError(err);
      } catch {
        // An error callback that throws has nowhere to report to.
      }
    } else if (err.final || err.phase === "callback") {
      console.error(err);
    }
  }

  function setStatus(patch, reset = false) {
    status = { ...status, ...patch };
    if (closed || !opts.onStatus) return;
    try {
      opts.onStatus(reset ? { ...status, reset: true } : { ...status });
    } catch (err) {
      report(new RealtimeError("realtime-client: onStatus threw", { phase: "callback", cause: err }));
    }
  }

  /** get asks the token endpoint with the room, scope and names and params. */
  async function get(params, phase) {
    const q = new URLSearchParams({ room });
    if (opts.scope) q.set("scope", opts.scope);
    if (names) q.set("names", names.join(","));
    for (const [k, v] of Object.entries(params)) q.set(k, v);
    const url = opts.tokenUrl + (opts.tokenUrl.includes("?") ? "&" : "?") + q.toString();
    const ac = new AbortController();
    aborts.add(ac);
    const timeout = later(tune.requestTimeout, () => ac.abort());
    let res;
    let text;
    try {
      res = await fetchFn(url, { method: "GET", headers: { Accept: "application/json" }, cache: "no-store", signal: ac.signal });
      text = await res.text();
    } catch (err) {
      throw new RealtimeError(`realtime-client: ${phase} request failed`, { phase, cause: err });
    } finally {
      cancel(timeout);
      aborts.delete(ac);
    }
    if (res.status !== 200) {
      const final = FINAL_STATUSES.has(res.status);
      throw new RealtimeError(`realtime-client: ${phase} request answered ${res.status}${final ? " (final for this room)" : ""}`, { phase, status: res.status, final });
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new RealtimeError(`realtime-client: ${phase} answer is not JSON`, { phase, status: res.status, cause: err });
    }
    return { body, date: res.headers?.get?.("date") ?? null };
  }

  /** fail stops everything after a final error. */
  function fail(err) {
    report(err);
    setStatus({ state: "failed" });
    stop();
  }

  // --- the answer and the connections -------------------------------------

  function renewIn(ms) {
    cancel(renewTimer);
    renewTimer = later(ms, renew);
  }

  async function renew() {
    renewTimer = null;
    if (renewing) {
      renewAgain = true;
      return;
    }
    renewing = true;
    let got;
    try {
      const { body, date } = await get({ v: "2" }, "token");
      got = { answer: parseAnswer(body), date };
    } catch (err) {
      got = { err };
    }
    renewing = false;
    if (closed) return;
    if (got.err) {
      if (got.err.final) return fail(got.err);
      report(got.err);
      tokenFailures++;
      renewIn(renewAgain ? 0 : backoff(tokenFailures));
      renewAgain = false;
      return;
    }
    tokenFailures = 0;
    apply(got.answer);
    if (renewAgain) {
      renewAgain = false;
      renewIn(0);
    } else if (renewTimer === null) {
      renewIn(renewDelay(got.answer.expires, got.date));
    }
  }

  /** renewDelay is the time until expires, read against the server's
   * clock (its Date header) when it gave one, so that a skewed browser
   * clock neither renews in a loop nor too late. */
  function renewDelay(expires, date) {
    const exp = expires ? Date.parse(expires) : NaN;
    if (!Number.isFinite(exp)) return tune.renewDefault;
    const serverNow = date ? Date.parse(date) : NaN;
    const now = Number.isFinite(serverNow) ? serverNow : clock.now();
    return Math.min(tune.renewMax, Math.max(tune.renewMin, exp - now));
  }

  function apply(a) {
    const key = connectionKey(a);
    const wasAvailable = catchUpAvailable;
    answer = a;
    if (refusedInMode !== null && a.mode !== refusedInMode) refusedInMode = null;
    catchUpAvailable = refusedInMode === null;
    if (active && !active.dead && active.key === key) {
      active.answer = a; // a fresh key for the next reconnection of the same connection
      if (status.mode !== a.mode) setStatus({ mode: a.mode });
    } else if (pending && !pending.dead && pending.key === key) {
      pending.answer = a;
    } else {
      closeConn(pending);
      open(a, key);
    }
    if (catchUpAvailable && (!wasAvailable || cursor === null)) wantCatchUp(true);
  }

  /** open starts the connection a asks for as the pending one; it becomes
   * the active one once live. */
  function open(a, key) {
    const c = { key, transport: a.transport, answer: a, live: false, dead: false, conn: null };
    pending = c; // before the factory, which may call the handlers at once
    const handlers = {
      open: () => {
        if (closed || c.dead) return;
        c.live = true;
        onLive(c);
      },
      message: (data) => {
        if (closed || c.dead) return;
        receive(data, c.transport);
      },
      down: () => {
        if (closed || c.dead || !c.live) return;
        c.live = false;
        if (c === active) setStatus({ state: "reconnecting" });
      },
      closed: (cause) => {
        if (closed || c.dead) return;
        c.dead = true;
        c.live = false;
        report(new RealtimeError(`realtime-client: the ${c.transport} connection ended`, { phase: "transport", cause }));
        connFailures++;
        if (c === active) setStatus({ state: "reconnecting" });
        if (c === pending) pending = null;
        // A new connection needs a fresh answer (an Inngest key is good
        // for a minute) and may be told to go elsewhere.
        if (!renewing) renewIn(backoff(connFailures));
      },
    };
    const factory = opts.transports[a.transport];
    try {
      if (typeof factory !== "function") throw new Error(`no transport ${a.transport}`);
      c.conn = factory(a, handlers);
    } catch (err) {
      handlers.closed(err);
    }
  }

  function closeConn(c) {
    if (!c) return;
    c.dead = true;
    c.live = false;
    try {
      c.conn?.close();
    } catch {
      // closing is best effort
    }
  }

  function onLive(c) {
    if (c === pending) {
      const old = active;
      active = c;
      pending = null;
      closeConn(old); // after the new one is live: nothing published meanwhile is missed
    }
    if (c !== active) return;
    connFailures = 0;
    setStatus({ state: "live", transport: c.transport, mode: c.answer.mode });
    wantCatchUp(true); // what was published while it connected
  }

  // --- delivery -------------------------------------------------------------

  function filterOf() {
    const n = names ?? answer?.names;
    return n ? new Set(n) : null;
  }

  function receive(data, transport) {
    const env = decodeEnvelope(data);
    if (!env) return;
    admit(env, { transport, receivedAt: clock.now() });
  }

  function deliver(env, info) {
    if (typeof env.id === "string" && env.id !== "") {
      if (seen.has(env.id)) return;
      seen.add(env.id);
    }
    try {
      onMessage(env, info);
    } catch (err) {
      report(new RealtimeError("realtime-client: onMessage threw", { phase: "callback", cause: err }));
    }
  }

  function numbered(env) {
    return isCount(env.seq) && isCount(env.epoch);
  }

  /** admit takes an envelope from a transport into delivery. */
  function admit(env, info) {
    const filter = filterOf();
    const hidden = filter !== null && !filter.has(env.name);
    if (typeof env.id === "string" && env.id !== "" && seen.has(env.id)) return;
    if (!numbered(env)) {
      if (!hidden) deliver(env, info); // published while the log was down: no order to keep
      return;
    }
    if (cursor === null) {
      cursor = { epoch: env.epoch, last: env.seq - 1 }; // the first position: this message
      lastDelivered = cursor.last;
    } else if (cursor.epoch === 0) {
      cursor.epoch = env.epoch; // the room had no history when the position was taken
    }
    if (!catchUpAvailable) {
      // Nothing can repair a gap (the endpoint serves no catch-up in this
      // mode): deliver as it comes and follow the position, for when a
      // catch-up becomes available.
      if (env.epoch !== cursor.epoch) {
        cursor = { epoch: env.epoch, last: env.seq };
        lastDelivered = env.seq;
      } else {
        cursor.last = Math.max(cursor.last, env.seq);
        lastDelivered = Math.max(lastDelivered, env.seq);
      }
      if (!hidden) deliver(env, info);
      return;
    }
    if (env.epoch !== cursor.epoch) {
      foreign.push({ env, info, hidden });
      wantCatchUp(); // which epoch is current: the catch-up tells
      return;
    }
    hold(env.seq, { env, info, hidden });
  }

  /** hold queues a numbered message of the cursor's epoch for its turn. */
  function hold(seq, h) {
    if (seq <= cursor.last) {
      // Passed: a copy, or a message the position or a catch-up stepped
      // over. Delivered if it is new and still in order.
      if (seq > lastDelivered && !h.hidden) {
        lastDelivered = seq;
        deliver(h.env, h.info);
      }
      return;
    }
    if (held.has(seq)) return;
    held.set(seq, h);
    drain();
    if (held.size > tune.holdLimit) {
      held.delete(Math.max(...held.keys())); // the catch-up brings it back
    }
  }

  /** drain delivers the held messages that are next in seq order and asks
   * for a catch-up when what is held waits for an earlier seq. */
  function drain() {
    for (;;) {
      const h = held.get(cursor.last + 1);
      if (!h) break;
      held.delete(cursor.last + 1);
      cursor.last++;
      if (!h.hidden) {
        lastDelivered = cursor.last;
        deliver(h.env, h.info);
      }
    }
    if (held.size > 0) wantCatchUp();
  }

  /** skipTo moves the cursor to target over seqs known to hold nothing
   * this subscription delivers, delivering what is held on the way. */
  function skipTo(target) {
    if (!(target > cursor.last)) return;
    const passed = [...held.keys()].filter((s) => s <= target).sort((a, b) => a - b);
    for (const s of passed) {
      const h = held.get(s);
      held.delete(s);
      cursor.last = s;
      if (!h.hidden) {
        lastDelivered = s;
        deliver(h.env, h.info);
      }
    }
    cursor.last = target;
    drain();
  }

  /** releaseAll delivers everything held, in order, over any gap. */
  function releaseAll() {
    if (cursor && held.size > 0) skipTo(Math.max(...held.keys()));
    const rest = foreign;
    foreign = [];
    rest.sort((a, b) => a.env.epoch - b.env.epoch || a.env.seq - b.env.seq);
    for (const h of rest) if (!h.hidden) deliver(h.env, h.info);
  }

  function gap() {
    return held.size > 0 || foreign.length > 0;
  }

  function reset() {
    setStatus({ resets: status.resets + 1 }, true);
  }

  // --- catch-up -------------------------------------------------------------

  /** wantCatchUp asks for a catch-up; now skips a retry's wait (a new
   * connection need not wait for the backoff of an old failure). */
  function wantCatchUp(now = false) {
    if (closed || !catchUpAvailable) return;
    if (now && cu.timer !== null) {
      cancel(cu.timer);
      cu.timer = null;
    }
    if (cu.inflight || cu.timer !== null) {
      cu.again = true;
      return;
    }
    void runCatchUp();
  }

  async function runCatchUp() {
    cu.inflight = true;
    cu.again = false;
    const asked = cursor ? { epoch: cursor.epoch, after: cursor.last } : null;
    let page;
    let error;
    try {
      const { body } = await get({ after: asked ? String(asked.after) : POSITION_AFTER, limit: String(tune.catchUpLimit) }, "catchup");
      page = parseCatchUp(body);
    } catch (err) {
      error = err;
    }
    cu.inflight = false;
    if (closed) return;
    if (error) {
      if (error.final) return fail(error);
      if (error.status === 404) return unavailable();
      report(error);
      cu.failures++;
      if (gap() && cu.failures >= tune.maxCatchUpFailures) {
        cu.failures = 0;
        giveUp();
        return;
      }
      retryCatchUp(backoff(cu.failures));
      return;
    }
    cu.failures = 0;
    const moved = applyPage(page, asked);
    if (cu.again || (page.more && moved)) {
      cu.idle = 0;
      void runCatchUp();
    } else if (gap()) {
      if (moved) cu.idle = 0;
      else cu.idle++;
      if (cu.idle >= tune.maxIdleRounds) {
        cu.idle = 0;
        giveUp();
      } else if (moved) {
        void runCatchUp();
      } else {
        retryCatchUp(backoff(cu.idle));
      }
    } else {
      cu.idle = 0;
    }
  }

  function retryCatchUp(ms) {
    cu.timer = later(ms, () => {
      cu.timer = null;
      void runCatchUp();
    });
  }

  /** applyPage takes a catch-up answer asked after asked (null: the
   * position) and reports whether the cursor moved. */
  function applyPage(p, asked) {
    const before = cursor ? `${cursor.epoch}:${cursor.last}` : "";
    if (asked === null) {
      if (cursor === null) {
        cursor = { epoch: p.epoch, last: p.head };
        lastDelivered = p.head;
      }
      // else a live message set the position first; the next catch-up goes on from it
      return true;
    }
    if (cursor.epoch !== asked.epoch) return true; // a live message set the epoch meanwhile: ask again
    if (p.head === 0 || p.epoch === 0) {
      if (cursor.last > 0) {
        // The log has forgotten the room: what it numbered is gone.
        reset();
        releaseAll();
        cursor = { epoch: 0, last: 0 };
        lastDelivered = 0;
      }
      return before !== `${cursor.epoch}:${cursor.last}`;
    }
    if (cursor.epoch === 0) {
      cursor.epoch = p.epoch;
    } else if (p.epoch !== cursor.epoch) {
      // A new numbering: the log lost what the page shows. Reload, and go
      // on from the log's head with what arrived of the new epoch.
      const mine = foreign.filter((h) => h.env.epoch === p.epoch);
      foreign = foreign.filter((h) => h.env.epoch !== p.epoch);
      reset();
      releaseAll();
      cursor = { epoch: p.epoch, last: p.head };
      lastDelivered = 0; // what arrived of the new epoch is delivered, in order
      for (const h of mine.sort((a, b) => a.env.seq - b.env.seq)) hold(h.env.seq, h);
      return true;
    }
    if (p.truncated) reset(); // the log no longer holds everything after the cursor
    if (p.head < asked.after) return false; // a log behind what was delivered: nothing to add
    const now = clock.now();
    const filter = filterOf();
    const entries = p.messages
      .map((m) => decodeEnvelope(m))
      .filter((env) => env !== null && isCount(env.seq) && env.seq > asked.after)
      .sort((a, b) => a.seq - b.seq);
    for (const env of entries) {
      if (env.seq > cursor.last) skipTo(env.seq - 1); // seqs the endpoint left out: names not asked for
      hold(env.seq, { env, info: { transport: "catchup", receivedAt: now }, hidden: filter !== null && !filter.has(env.name) });
    }
    if (Number.isSafeInteger(p.next)) skipTo(p.next); // everything up to next was read
    // Messages of another epoch that the log does not number (any more).
    if (foreign.length > 0) {
      const rest = foreign;
      foreign = [];
      for (const h of rest) if (!h.hidden) deliver(h.env, h.info);
    }
    return before !== `${cursor.epoch}:${cursor.last}`;
  }

  /** unavailable handles a catch-up answered 404: the endpoint serves none
   * in this mode. Without a repair, what is held is delivered; and when
   * the answer did not say legacy, the mode has moved: ask again now. */
  function unavailable() {
    refusedInMode = answer?.mode ?? null;
    catchUpAvailable = false;
    releaseAll();
    if (refusedInMode !== "legacy") renewIn(0);
  }

  function giveUp() {
    reset();
    releaseAll();
  }

  // --- start and stop -------------------------------------------------------

  function stop() {
    closed = true;
    for (const h of timers) clock.clearTimeout(h);
    timers.clear();
    for (const ac of aborts) ac.abort();
    aborts.clear();
    closeConn(active);
    closeConn(pending);
    active = pending = null;
    held.clear();
    foreign = [];
  }

  void renew();

  return function unsubscribe() {
    if (closed) return;
    stop();
  };
}
