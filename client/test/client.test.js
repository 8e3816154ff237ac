// Unit tests of the client's core with a fake endpoint, fake transports
// and a fake clock: what a page relies on, one behaviour per test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RealtimeError, decodeEnvelope, parseAnswer, parseCatchUp, subscribe } from "../src/client.js";
import { FakeClock, FakeTransports, TOKEN_URL, World, flush, start } from "./helpers.js";

const MAX = "18446744073709551615";

/** live starts in mode with the first connection open and positioned. */
async function live(mode, opts = {}) {
  const s = await start({ mode, ...opts });
  s.t.last().open();
  await flush();
  return s;
}

describe("following the token answer", () => {
  test("asks v=2 with the room and scope, and joins the PartyKit room it names", async () => {
    const s = await start({ mode: "legacy" });
    const [req] = s.world.ofKind("token");
    assert.equal(req.params.get("v"), "2");
    assert.equal(req.params.get("room"), "vid_1");
    assert.equal(req.params.get("scope"), "video-ready");
    const c = s.t.last();
    assert.equal(c.kind, "partykit");
    assert.deepEqual(c.answer.partykit, { host: "localhost:1999", room: "vid_1", party: "main" });
    c.open();
    await flush();
    assert.deepEqual(s.status(), { state: "live", transport: "partykit", mode: "legacy", resets: 0 });
    s.unsubscribe();
  });

  test("passes the Inngest token as the SDK takes it", async () => {
    const s = await start({ mode: "primary" });
    const c = s.t.last();
    assert.equal(c.kind, "inngest");
    assert.equal(c.answer.key, "jwt_1");
    assert.equal(c.answer.channel, "ch_vid_1");
    assert.deepEqual(c.answer.topics, ["video.asset.ready"]);
    assert.equal(c.answer.apiBaseUrl, "http://127.0.0.1:8288");
    s.unsubscribe();
  });

  test("moves to the transport a new answer names: the new connection opens before the old closes", async () => {
    const s = await live("shadow");
    const party = s.t.last("partykit");
    s.world.mode = "primary";
    await s.clock.advance(60_000); // the answer's expires
    assert.equal(s.world.ofKind("token").length, 2);
    const inngest = s.t.last("inngest");
    assert.ok(inngest, "an Inngest connection is opened");
    assert.equal(party.closed, false, "PartyKit stays open until Inngest is live");

    const m1 = s.world.publish();
    party.send(m1); // still delivered while Inngest connects
    await flush();
    inngest.open();
    await flush();
    assert.equal(party.closed, true, "PartyKit is closed once Inngest is live");
    assert.deepEqual(s.status(), { state: "live", transport: "inngest", mode: "primary", resets: 0 });

    const m2 = s.world.publish();
    inngest.send(m2);
    await flush();
    assert.deepEqual(s.ids(), [m1.id, m2.id]);
    assert.deepEqual(s.got.map((g) => g.info.transport), ["partykit", "inngest"]);
    s.unsubscribe();
  });

  test("keeps the connection when only the key changes, and uses the new answer's mode", async () => {
    const s = await live("primary");
    s.world.mode = "realtime";
    await s.clock.advance(60_000);
    assert.equal(s.t.conns.length, 1, "no second connection for a renewed key");
    assert.equal(s.status().mode, "realtime");
    assert.equal(s.t.last().answer.key, "jwt_1");
    s.unsubscribe();
  });

  test("a new connection that fails to open leaves the old one delivering, and is tried again", async () => {
    const s = await live("shadow");
    const party = s.t.last("partykit");
    s.world.mode = "primary";
    await s.clock.advance(60_000);
    s.t.last("inngest").end(new Error("refused"));
    await flush();
    assert.equal(party.closed, false);
    const m = s.world.publish();
    party.send(m);
    await flush();
    assert.deepEqual(s.ids(), [m.id]);
    await s.clock.advance(250); // first backoff
    const again = s.t.last("inngest");
    assert.notEqual(again, s.t.conns[1]);
    again.open();
    await flush();
    assert.equal(party.closed, true);
    assert.equal(s.status().transport, "inngest");
    s.unsubscribe();
  });

  test("an Inngest connection that ends is replaced after a fresh answer", async () => {
    const s = await live("primary");
    const first = s.t.last();
    first.end(new Error("closing"));
    await flush();
    assert.equal(s.status().state, "reconnecting");
    assert.equal(s.errors.at(-1).phase, "transport");
    assert.equal(s.world.ofKind("token").length, 1, "the new answer waits for the backoff");
    await s.clock.advance(250);
    assert.equal(s.world.ofKind("token").length, 2);
    const second = s.t.last();
    assert.notEqual(second, first);
    assert.equal(second.answer.key, "jwt_2", "the new connection uses the fresh key");
    second.open();
    await flush();
    assert.equal(s.status().state, "live");
    s.unsubscribe();
  });

  test("renews at expires by the server's clock, not a skewed browser clock", async () => {
    const s = await live("primary", {
      world: (w) => {
        const fetch = w.fetch;
        // The server's clock is 10 minutes behind the browser's.
        w.fetch = async (url, init) => {
          const r = await fetch(url, init);
          const serverNow = w.clock.now() - 600_000;
          if (!new URL(url).searchParams.has("after")) {
            const body = { ...JSON.parse(await r.text()), expires: new Date(serverNow + 60_000).toISOString() };
            return { status: 200, headers: new Headers({ date: new Date(serverNow).toUTCString() }), text: async () => JSON.stringify(body) };
          }
          return r;
        };
      },
    });
    await s.clock.advance(59_999);
    assert.equal(s.world.ofKind("token").length, 1);
    await s.clock.advance(1);
    assert.equal(s.world.ofKind("token").length, 2);
    s.unsubscribe();
  });
});

describe("each message once", () => {
  test("drops the copy another transport brings during a switch, numbered or not", async () => {
    const s = await live("shadow");
    const party = s.t.last("partykit");
    s.world.mode = "primary";
    await s.clock.advance(60_000);
    const inngest = s.t.last("inngest");
    const numbered = s.world.publish();
    const unnumbered = { body: {}, requestId: "r", name: "video.asset.ready", id: "no_seq_1" };
    party.send(numbered);
    party.send(unnumbered);
    inngest.open();
    inngest.send(numbered);
    inngest.send(unnumbered);
    await flush();
    assert.deepEqual(s.ids(), [numbered.id, "no_seq_1"]);
    s.unsubscribe();
  });

  test("drops a live message the catch-up delivered first", async () => {
    const s = await live("primary");
    const c = s.t.last();
    const m1 = s.world.publish();
    const m2 = s.world.publish();
    c.send(m2); // m1 was lost: the catch-up brings m1 and m2
    await flush();
    c.send(m2);
    c.send(m1);
    await flush();
    assert.deepEqual(s.ids(), [m1.id, m2.id]);
    s.unsubscribe();
  });

  test("remembers a bounded number of ids", async () => {
    const s = await live("legacy", { tuning: { seenSize: 2 } });
    const c = s.t.last();
    const m = (id) => ({ body: {}, requestId: "r", name: "video.asset.ready", id });
    for (const id of ["a", "b", "a", "c", "a"]) c.send(m(id));
    await flush();
    // "a" is forgotten once "b" and "c" are remembered.
    assert.deepEqual(s.ids(), ["a", "b", "c", "a"]);
    s.unsubscribe();
  });

  test("ignores what is no envelope (PartyKit chatter, other JSON)", async () => {
    const s = await live("legacy");
    const c = s.t.last();
    c.handlers.message("abc123: hello");
    c.handlers.message("[1,2]");
    c.handlers.message('{"body":1}');
    c.handlers.message(new ArrayBuffer(4));
    await flush();
    assert.deepEqual(s.got, []);
    s.unsubscribe();
  });
});

describe("seq order and catch-up", () => {
  test("takes its position from the log first", async () => {
    const s = await start({ mode: "primary", world: (w) => [1, 2, 3].forEach(() => w.publish()) });
    const [first] = s.world.ofKind("catchup");
    assert.equal(first.params.get("after"), MAX);
    s.t.last().open();
    await flush();
    const [, second] = s.world.ofKind("catchup");
    assert.equal(second.params.get("after"), "3", "once live, it asks after the position");
    assert.deepEqual(s.got, [], "history before the position is the page's own state");
    s.unsubscribe();
  });

  test("holds a message after a skipped seq until the catch-up fills the gap", async () => {
    const s = await live("primary", { world: (w) => [1, 2, 3].forEach(() => w.publish()) });
    const c = s.t.last();
    const [m4, m5, m6] = [s.world.publish(), s.world.publish(), s.world.publish()];
    const release = s.world.hold("catchup");
    c.send(m4);
    c.send(m6); // m5 is lost on the way
    await flush();
    assert.deepEqual(s.seqs(), [4], "6 waits for 5");
    const asked = s.world.ofKind("catchup").at(-1);
    assert.equal(asked.params.get("after"), "4");
    release();
    await flush();
    assert.deepEqual(s.seqs(), [4, 5, 6]);
    assert.deepEqual(s.got.map((g) => g.info.transport), ["inngest", "catchup", "inngest"]);
    assert.equal(s.resets(), 0);
    s.unsubscribe();
  });

  test("the seqs of other names in the room are skipped, not waited for", async () => {
    const s = await live("primary", { world: (w) => w.publish() });
    const c = s.t.last();
    s.world.publish("transcript.ready"); // seq 2, not on this subscription's topics
    const m3 = s.world.publish();
    c.send(m3);
    await flush();
    assert.deepEqual(s.seqs(), [3]);
    assert.equal(s.resets(), 0);
    // On PartyKit the whole room arrives: a name outside names fills its seq.
    const p = await live("shadow", { names: ["video.asset.ready"] });
    const pc = p.t.last();
    const t1 = p.world.publish("transcript.ready");
    const v2 = p.world.publish();
    const catchUps = p.world.ofKind("catchup").length;
    pc.send(t1);
    pc.send(v2);
    await flush();
    assert.deepEqual(p.seqs(), [2]);
    assert.equal(p.world.ofKind("catchup").length, catchUps, "no gap, no catch-up");
    assert.equal(p.world.ofKind("token")[0].params.get("names"), "video.asset.ready");
    s.unsubscribe();
    p.unsubscribe();
  });

  test("asks the catch-up after a PartyKit reconnection and delivers what it missed", async () => {
    const s = await live("shadow");
    const c = s.t.last();
    const m1 = s.world.publish();
    c.send(m1);
    await flush();
    c.down();
    await flush();
    assert.equal(s.status().state, "reconnecting");
    const m2 = s.world.publish(); // published while the socket was down
    c.open(); // partysocket reconnected
    await flush();
    assert.equal(s.world.ofKind("catchup").at(-1).params.get("after"), "1");
    assert.deepEqual(s.ids(), [m1.id, m2.id]);
    assert.equal(s.got[1].info.transport, "catchup");
    assert.equal(s.status().state, "live");
    s.unsubscribe();
  });

  test("asks the catch-up after an Inngest reconnection", async () => {
    const s = await live("primary");
    s.t.last().send(s.world.publish());
    await flush();
    s.t.last().end();
    const m2 = s.world.publish();
    await s.clock.advance(250);
    s.t.last().open();
    await flush();
    assert.deepEqual(s.seqs(), [1, 2]);
    assert.equal(s.got[1].env.id, m2.id);
    s.unsubscribe();
  });

  test("pages through a catch-up that is more than one page", async () => {
    const s = await live("primary", { tuning: { catchUpLimit: 2 } });
    const c = s.t.last();
    const ms = [1, 2, 3, 4, 5].map(() => s.world.publish());
    c.send(ms[4]);
    await flush();
    assert.deepEqual(s.seqs(), [1, 2, 3, 4, 5]);
    s.unsubscribe();
  });

  test("a catch-up that fails is retried with backoff while the gap is held", async () => {
    const s = await live("primary");
    const c = s.t.last();
    const [m1, m2] = [s.world.publish(), s.world.publish()];
    s.world.next("catchup", { status: 502, body: { error: "history unavailable" } });
    c.send(m2);
    await flush();
    assert.deepEqual(s.got, []);
    assert.equal(s.errors.at(-1).status, 502);
    assert.equal(s.errors.at(-1).final, false);
    await s.clock.advance(249);
    assert.deepEqual(s.got, []);
    await s.clock.advance(1);
    assert.deepEqual(s.ids(), [m1.id, m2.id]);
    s.unsubscribe();
  });
});

describe("resets", () => {
  test("a new epoch resets, and delivery goes on in the new numbering", async () => {
    const s = await live("primary", { world: (w) => w.publish() });
    const c = s.t.last();
    c.send(s.world.publish()); // seq 2
    await flush();
    s.world.newEpoch(); // the log lost its history
    const n1 = s.world.publish();
    c.send(n1);
    await flush();
    assert.equal(s.resets(), 1);
    assert.deepEqual(s.statuses.find((x) => x.reset), { state: "live", transport: "inngest", mode: "primary", resets: 1, reset: true });
    const n2 = s.world.publish();
    c.send(n2);
    await flush();
    assert.deepEqual(s.got.map((g) => [g.env.epoch, g.env.seq]), [[s.world.epoch - 1_000_000, 2], [s.world.epoch, 1], [s.world.epoch, 2]]);
    assert.equal(s.resets(), 1);
    s.unsubscribe();
  });

  test("a truncated catch-up resets and delivers what the log still holds", async () => {
    const s = await live("primary");
    const c = s.t.last();
    c.send(s.world.publish()); // seq 1
    await flush();
    [2, 3].forEach(() => s.world.publish());
    s.world.truncatedBelow = 3; // retention dropped 2 and 3
    const m4 = s.world.publish();
    const m5 = s.world.publish();
    c.send(m5);
    await flush();
    assert.equal(s.resets(), 1);
    assert.deepEqual(s.seqs(), [1, 4, 5]);
    assert.equal(s.got[1].env.id, m4.id);
    s.unsubscribe();
  });

  test("a gap the log cannot fill is given up with a reset after a few catch-ups", async () => {
    const s = await live("primary");
    const c = s.t.last();
    s.world.publish();
    const m2 = s.world.publish();
    s.world.log = s.world.log.filter((e) => e.seq !== 1); // the log lost seq 1 but still counts it
    const before = s.world.ofKind("catchup").length;
    // The endpoint skips seq 1: a log that lost an entry without a new epoch
    // still answers next=2, and delivery moves on without a reset.
    c.send(m2);
    await flush();
    assert.deepEqual(s.seqs(), [2]);
    assert.equal(s.world.ofKind("catchup").length, before + 1);
    // A log that answers nothing beyond the cursor leaves the gap open.
    const m4 = { ...s.world.publish(), seq: 4 };
    s.world.log.pop();
    s.world.head = 2;
    c.send(m4);
    await flush();
    assert.deepEqual(s.seqs(), [2]);
    await s.clock.advance(250);
    await s.clock.advance(500);
    assert.equal(s.resets(), 1);
    assert.deepEqual(s.seqs(), [2, 4]);
    s.unsubscribe();
  });

  test("a catch-up that keeps failing gives the gap up with a reset", async () => {
    const s = await live("primary");
    const c = s.t.last();
    s.world.publish();
    const m2 = s.world.publish();
    for (let i = 0; i < 5; i++) s.world.next("catchup", { error: new TypeError("fetch failed") });
    c.send(m2);
    await flush();
    for (const ms of [250, 500, 1000, 2000]) await s.clock.advance(ms);
    assert.equal(s.resets(), 1);
    assert.deepEqual(s.seqs(), [2]);
    assert.equal(s.errors.filter((e) => e.phase === "catchup").length, 5);
    assert.equal(s.clock.pending(), 1, "only the renewal is left");
    s.unsubscribe();
  });
});

describe("legacy mode", () => {
  test("a catch-up answered 404 in legacy mode is not asked again, and messages are delivered as they come", async () => {
    const s = await live("legacy");
    const c = s.t.last();
    const ms = [1, 2, 3].map(() => s.world.publish());
    c.send(ms[2]);
    c.send(ms[0]);
    await flush();
    assert.deepEqual(s.seqs(), [3, 1]);
    await s.clock.advance(60_000); // a renewal, still legacy
    c.down();
    c.open(); // a reconnection
    await flush();
    assert.equal(s.world.ofKind("catchup").length, 1, "only the first, answered 404");
    assert.equal(s.world.ofKind("token").length, 2);
    s.unsubscribe();
  });

  test("a catch-up answered 404 in another mode releases what is held and asks for the answer at once", async () => {
    const s = await live("shadow");
    const c = s.t.last();
    const [, m2] = [s.world.publish(), s.world.publish()];
    s.world.mode = "legacy"; // flipped back before the next renewal
    c.send(m2);
    await flush();
    assert.deepEqual(s.seqs(), [2]);
    await s.clock.advance(0);
    assert.equal(s.world.ofKind("token").length, 2);
    assert.equal(s.status().mode, "legacy");
    assert.equal(s.resets(), 0);
    s.unsubscribe();
  });

  test("moving from legacy to shadow catches up from the last message seen", async () => {
    const s = await live("legacy");
    const c = s.t.last();
    c.send(s.world.publish());
    await flush();
    s.world.mode = "shadow";
    const m2 = s.world.publish(); // lost
    await s.clock.advance(60_000);
    assert.equal(s.t.conns.length, 1, "same PartyKit room: same connection");
    assert.equal(s.world.ofKind("catchup").at(-1).params.get("after"), "1");
    assert.deepEqual(s.ids().at(-1), m2.id);
    s.unsubscribe();
  });

  test("a rollback from realtime to legacy loses nothing when the endpoint serves catch-up in legacy mode", async () => {
    const s = await live("realtime", { world: (w) => (w.legacyCatchUp = true) });
    const inngest = s.t.last("inngest");
    inngest.send(s.world.publish());
    await flush();
    s.world.mode = "legacy"; // publishes now go to PartyKit only; the page still listens on Inngest
    const lost = s.world.publish();
    await s.clock.advance(60_000);
    const party = s.t.last("partykit");
    party.open();
    await flush();
    assert.equal(inngest.closed, true);
    assert.deepEqual(s.ids().at(-1), lost.id, "the catch-up brings what PartyKit carried before the page joined it");
    assert.equal(s.got.at(-1).info.transport, "catchup");
    s.unsubscribe();
  });
});

describe("errors", () => {
  for (const status of [401, 403]) {
    test(`a token answered ${status} is final: reported, nothing retried`, async () => {
      const s = await start({ mode: "primary", world: (w) => w.next("token", { status, body: { error: "no" } }) });
      assert.equal(s.errors.length, 1);
      assert.ok(s.errors[0] instanceof RealtimeError);
      assert.deepEqual([s.errors[0].phase, s.errors[0].status, s.errors[0].final], ["token", status, true]);
      assert.equal(s.status().state, "failed");
      assert.equal(s.t.conns.length, 0);
      assert.equal(s.clock.pending(), 0);
      await s.clock.advance(3_600_000);
      assert.equal(s.world.requests.length, 1);
    });
  }

  test("a catch-up answered 403 stops the subscription and closes its connection", async () => {
    const s = await start({ mode: "primary", world: (w) => w.next("catchup", { status: 403 }) });
    assert.equal(s.errors.at(-1).status, 403);
    assert.equal(s.errors.at(-1).final, true);
    assert.equal(s.t.open().length, 0);
    assert.equal(s.clock.pending(), 0);
  });

  test("5xx, network errors and unusable answers are retried with backoff", async () => {
    const s = await start({
      mode: "primary",
      world: (w) => {
        w.next("token", { status: 503 });
        w.next("token", { error: new TypeError("fetch failed") });
        w.next("token", { body: { transport: "carrier-pigeon" } });
      },
    });
    assert.equal(s.world.ofKind("token").length, 1);
    await s.clock.advance(249);
    assert.equal(s.world.ofKind("token").length, 1, "not before the first backoff");
    await s.clock.advance(1);
    assert.equal(s.world.ofKind("token").length, 2);
    await s.clock.advance(500);
    assert.equal(s.world.ofKind("token").length, 3);
    await s.clock.advance(1000);
    assert.equal(s.world.ofKind("token").length, 4);
    assert.deepEqual(s.errors.map((e) => [e.status, e.final]), [[503, false], [undefined, false], [undefined, false]]);
    assert.equal(s.t.last().kind, "inngest");
    s.unsubscribe();
  });

  test("a request that hangs is given up after the request timeout", async () => {
    const s = await start({ mode: "primary", world: (w) => w.hold("token") });
    assert.equal(s.world.inflight.size, 1);
    await s.clock.advance(10_000);
    assert.equal(s.errors.at(-1).phase, "token");
    assert.equal(s.world.ofKind("token")[0].signal.aborted, true);
    s.unsubscribe();
  });

  test("an onMessage that throws is reported and delivery goes on", async () => {
    let n = 0;
    const s = await live("legacy", {
      onMessage: () => {
        if (n++ === 0) throw new Error("page bug");
      },
    });
    const c = s.t.last();
    c.send(s.world.publish());
    c.send(s.world.publish());
    await flush();
    assert.equal(s.got.length, 2);
    assert.equal(s.errors.at(-1).phase, "callback");
    s.unsubscribe();
  });
});

describe("unsubscribe", () => {
  test("stops everything: connections, requests in flight, timers, callbacks", async () => {
    const s = await live("shadow");
    const party = s.t.last("partykit");
    s.world.mode = "primary";
    await s.clock.advance(60_000);
    const inngest = s.t.last("inngest"); // opening, not live
    const release = s.world.hold("catchup");
    party.send({ ...s.world.publish(), seq: 5 }); // a gap: a catch-up in flight
    await flush();
    assert.equal(s.world.inflight.size, 1);
    assert.ok(s.clock.pending() > 0);
    const calls = s.got.length + s.statuses.length + s.errors.length;

    s.unsubscribe();
    assert.equal(party.closed, true);
    assert.equal(inngest.closed, true);
    assert.equal(s.clock.pending(), 0, "no timer left");
    await flush();
    assert.equal(s.world.inflight.size, 0, "the request in flight is aborted");
    release();
    inngest.open();
    party.send(s.world.publish());
    party.down();
    inngest.end();
    await s.clock.advance(3_600_000);
    assert.equal(s.got.length + s.statuses.length + s.errors.length, calls, "no callback after unsubscribe");
    assert.equal(s.world.requests.filter((r) => r.at > s.clock.now() - 3_600_000).length, 0, "no request after unsubscribe");
    assert.equal(s.clock.pending(), 0);
    s.unsubscribe(); // twice is fine
  });

  test("with the real timers, nothing keeps the process alive", async () => {
    const world = new World(new FakeClock());
    world.mode = "primary";
    const t = new FakeTransports();
    const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const unsubscribe = subscribe("vid_1", () => {}, { tokenUrl: TOKEN_URL, scope: "video-ready", fetch: world.fetch, transports: t.transports });
    await flush();
    t.last().open();
    await flush();
    assert.ok(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length > before, "a renewal timer is set");
    unsubscribe();
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length, before);
  });
});

describe("parsing", () => {
  test("parseAnswer reads both forms and the pre-v2 token", () => {
    assert.deepEqual(parseAnswer({ transport: "partykit", mode: "shadow", partykit: { host: "h:1999", room: "r" }, expires: "2030-01-01T00:00:00Z" }), {
      transport: "partykit", mode: "shadow", expires: "2030-01-01T00:00:00Z", names: undefined, partykit: { host: "h:1999", room: "r", party: "main" },
    });
    const old = parseAnswer({ channel: "c", topics: ["t"], key: "k", apiBaseUrl: "http://x", expires: "2030-01-01T00:00:00Z" });
    assert.equal(old.transport, "inngest");
    assert.equal(old.mode, "primary");
    for (const bad of [null, "x", {}, { transport: "inngest", channel: "c", topics: ["t"] }, { transport: "inngest", key: "k", channel: "c", topics: [] },
      { transport: "partykit", partykit: { host: "", room: "r" } }, { transport: "partykit", partykit: { host: "h" } }, { transport: "sse" }]) {
      assert.throws(() => parseAnswer(bad), RealtimeError, JSON.stringify(bad));
    }
  });

  test("parseCatchUp and decodeEnvelope refuse what they cannot use", () => {
    assert.equal(parseCatchUp({ messages: [], next: 1, head: 1, epoch: 2 }).more, false);
    for (const bad of [null, { messages: {} }, { messages: [], next: -1, head: 0, epoch: 0 }, { messages: [], next: 1, head: "1", epoch: 1 }]) {
      assert.throws(() => parseCatchUp(bad), RealtimeError);
    }
    assert.deepEqual(decodeEnvelope('{"name":"n","body":1}'), { name: "n", body: 1 });
    for (const bad of ["x", "null", '{"name":""}', '{"name":1}', [], 7]) assert.equal(decodeEnvelope(bad), null);
  });

  test("subscribe refuses missing arguments", () => {
    const t = new FakeTransports();
    const ok = { tokenUrl: TOKEN_URL, scope: "video-ready", fetch: async () => ({}), transports: t.transports };
    assert.throws(() => subscribe("", () => {}, ok), TypeError);
    assert.throws(() => subscribe("r", null, ok), TypeError);
    assert.throws(() => subscribe("r", () => {}, { ...ok, tokenUrl: "" }), TypeError);
    assert.throws(() => subscribe("r", () => {}, { ...ok, scope: undefined }), TypeError);
    assert.throws(() => subscribe("r", () => {}, { ...ok, transports: undefined }), TypeError);
  });
});
