// Seeded random runs (the same on every run): whatever order, copies and
// losses the transports bring, the client delivers every message of its
// names once, in seq order; and the parsers never throw anything but their
// typed error on arbitrary input.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RealtimeError, decodeEnvelope, parseAnswer, parseCatchUp } from "../src/client.js";
import { flush, start } from "./helpers.js";

/** mulberry32: a small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("shuffled, duplicated and lost messages on two transports: each once, in seq order", async () => {
  const vias = new Map();
  for (let seed = 1; seed <= 150; seed++) {
    const rnd = prng(seed);
    const s = await start({ mode: "shadow", names: ["video.asset.ready"] });
    const party = s.t.last("partykit");
    party.open();
    await flush();
    // Half-way the scope moves to primary: both connections carry messages.
    const flipAt = Math.floor(rnd() * 20);
    const mine = [];
    let pendingSends = [];
    for (let i = 0; i < 30; i++) {
      if (i === flipAt) {
        s.world.mode = "primary";
        await s.clock.advance(60_000);
        if (rnd() < 0.8) s.t.last("inngest")?.open();
      }
      const name = rnd() < 0.3 ? "transcript.ready" : "video.asset.ready";
      const env = s.world.publish(name);
      if (name === "video.asset.ready") mine.push(env.id);
      for (const c of s.t.open().filter((x) => x.opened)) {
        // PartyKit carries every name; Inngest only the topics of the token.
        if (c.kind === "inngest" && name !== "video.asset.ready") continue;
        const r = rnd();
        if (r < 0.15) continue; // lost
        pendingSends.push([c, env]);
        if (r > 0.85) pendingSends.push([c, env]); // a copy
      }
      if (rnd() < 0.4) {
        // Deliver what is on its way, in a random order.
        pendingSends.sort(() => rnd() - 0.5);
        for (const [c, e] of pendingSends) if (!c.closed) c.send(e);
        pendingSends = [];
        await flush();
      }
    }
    for (const [c, e] of pendingSends) if (!c.closed) c.send(e);
    await flush();
    assert.ok(s.got.length > 0, `seed ${seed}: something was delivered live`);
    // A reconnection at the end asks for whatever is still missing.
    const last = s.t.open().at(-1);
    last.down();
    last.open();
    await flush();
    await s.clock.advance(10_000); // any catch-up retry
    assert.deepEqual(s.ids(), mine, `seed ${seed}`);
    for (const g of s.got) vias.set(g.info.transport, (vias.get(g.info.transport) ?? 0) + 1);
    assert.equal(s.resets(), 0, `seed ${seed}`);
    s.unsubscribe();
    assert.equal(s.clock.pending(), 0, `seed ${seed}: no timer after unsubscribe`);
  }
  // The runs exercised every path: live on each transport, and repair.
  for (const via of ["partykit", "inngest", "catchup"]) assert.ok(vias.get(via) > 100, `${via}: ${vias.get(via)}`);
});

/** value makes an arbitrary JSON-ish value, biased towards the shapes parsed. */
function value(rnd, depth = 0) {
  const r = rnd();
  const keys = ["transport", "mode", "key", "channel", "topics", "apiBaseUrl", "expires", "partykit", "host", "room", "party",
    "messages", "next", "more", "head", "epoch", "truncated", "name", "seq", "id", "body", "names", "__proto__", "constructor"];
  if (depth > 3 || r < 0.2) return [null, true, 0, -1, 1.5, 2 ** 60, NaN, "", "inngest", "partykit", "x"][Math.floor(rnd() * 11)];
  if (r < 0.35) return JSON.stringify(value(rnd, depth + 1));
  if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(rnd, depth + 1));
  const o = {};
  for (let i = Math.floor(rnd() * 6); i > 0; i--) o[keys[Math.floor(rnd() * keys.length)]] = value(rnd, depth + 1);
  return o;
}

test("the parsers refuse arbitrary input with a RealtimeError, never anything else", () => {
  const rnd = prng(42);
  for (let i = 0; i < 20_000; i++) {
    const v = value(rnd);
    for (const parse of [parseAnswer, parseCatchUp]) {
      try {
        const out = parse(v);
        assert.equal(typeof out, "object");
      } catch (err) {
        assert.ok(err instanceof RealtimeError, `${parse.name}(${JSON.stringify(v)}) threw ${err}`);
      }
    }
    const env = decodeEnvelope(v);
    assert.ok(env === null || (typeof env.name === "string" && env.name !== ""));
  }
});
