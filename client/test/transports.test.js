// The real transports (the inngest SDK's subscription and partysocket)
// against websocket servers on loopback that speak as Inngest Realtime and
// PartyKit do to a browser: what each adapter tells the client. Needs a
// global WebSocket (node --experimental-websocket on Node 20).
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";

import { WebSocketServer } from "ws";

import { inngestTransport, partykitTransport } from "../src/transports.js";

/** events collects what a transport calls, and waits for the nth of a kind. */
function recorder() {
  const seen = [];
  const waiters = [];
  const push = (e) => {
    seen.push(e);
    for (const w of [...waiters]) {
      if (seen.filter((x) => x.kind === w.kind).length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  return {
    seen,
    handlers: {
      open: () => push({ kind: "open" }),
      message: (data) => push({ kind: "message", data }),
      down: () => push({ kind: "down" }),
      closed: (cause) => push({ kind: "closed", cause }),
    },
    /** wait resolves once n events of kind happened (a test's timeout bounds it). */
    wait(kind, n = 1) {
      if (seen.filter((x) => x.kind === kind).length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ kind, n, resolve }));
    },
  };
}

async function server() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const conns = [];
  wss.on("connection", (ws, req) => conns.push({ ws, url: new URL(req.url, "http://x") }));
  const next = async (n) => {
    while (conns.length < n) await once(wss, "connection");
    return conns[n - 1];
  };
  return { wss, port: wss.address().port, conns, next };
}

const envelope = { body: { videoResourceId: "vid_1" }, requestId: "vid_1", name: "video.asset.ready", id: "m1", seq: 1, epoch: 7 };

describe("inngestTransport", () => {
  let s;
  before(async () => {
    s = await server();
  });
  after(() => s.wss.close());

  test("connects with the answer's key at apiBaseUrl, hands on data messages, and reports the end", { timeout: 10_000 }, async () => {
    const r = recorder();
    const answer = { transport: "inngest", mode: "primary", key: "jwt_abc", channel: "ch_1", topics: ["video.asset.ready"], apiBaseUrl: `http://127.0.0.1:${s.port}` };
    inngestTransport(answer, r.handlers);
    const conn = await s.next(1);
    assert.equal(conn.url.pathname, "/v1/realtime/connect");
    assert.equal(conn.url.searchParams.get("token"), "jwt_abc");
    await r.wait("open");
    // As Inngest sends them: a frame of another topic is dropped by the SDK.
    conn.ws.send(JSON.stringify({ kind: "data", channel: "ch_1", topic: "other", data: { ...envelope, id: "x" } }));
    conn.ws.send(JSON.stringify({ kind: "data", channel: "ch_1", topic: "video.asset.ready", data: envelope, created_at: new Date().toISOString() }));
    await r.wait("message");
    assert.deepEqual(r.seen.filter((e) => e.kind === "message").map((e) => e.data), [envelope]);
    conn.ws.close(1000, "closing");
    await r.wait("closed");
  });

  test("close() ends the connection without reporting it", { timeout: 10_000 }, async () => {
    const r = recorder();
    const t = inngestTransport({ key: "k2", channel: "ch_1", topics: ["t"], apiBaseUrl: `http://127.0.0.1:${s.port}` }, r.handlers);
    const conn = await s.next(2);
    await r.wait("open");
    const closed = once(conn.ws, "close");
    t.close();
    await closed;
    assert.deepEqual(r.seen.map((e) => e.kind), ["open"]);
  });

  test("a refused connection is reported as closed", { timeout: 10_000 }, async () => {
    const r = recorder();
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await once(wss, "listening");
    const port = wss.address().port;
    wss.close();
    const origError = console.error;
    console.error = () => {}; // the SDK logs the websocket's error event
    try {
      inngestTransport({ key: "k", channel: "c", topics: ["t"], apiBaseUrl: `http://127.0.0.1:${port}` }, r.handlers);
      await r.wait("closed");
    } finally {
      console.error = origError;
    }
    assert.ok(r.seen[0].cause instanceof Error);
  });
});

describe("partykitTransport", () => {
  let s;
  before(async () => {
    s = await server();
  });
  after(() => s.wss.close());

  test("joins /parties/<party>/<room>, hands on text frames, and reconnects by itself", { timeout: 20_000 }, async () => {
    const r = recorder();
    const t = partykitTransport({ partykit: { host: `127.0.0.1:${s.port}`, room: "vid_1", party: "main" } }, r.handlers);
    const conn = await s.next(1);
    assert.equal(conn.url.pathname, "/parties/main/vid_1");
    await r.wait("open");
    conn.ws.send(JSON.stringify(envelope));
    await r.wait("message");
    assert.deepEqual(JSON.parse(r.seen.find((e) => e.kind === "message").data), envelope);

    conn.ws.terminate(); // a cut connection
    await r.wait("down");
    await s.next(2); // partysocket dials again after its delay (3 s)
    await r.wait("open", 2);
    const closed = once(s.conns[1].ws, "close");
    t.close();
    await closed;
    assert.deepEqual(r.seen.map((e) => e.kind).slice(0, 4), ["open", "message", "down", "open"]);
    assert.equal(r.seen.filter((e) => e.kind === "closed").length, 0, "partysocket never gives up");
  });
});
