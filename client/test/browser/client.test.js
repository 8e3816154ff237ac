// The checked-in bundle and the React hook in headless Chromium (Debian's,
// through playwright-core), against the stand-in app of harness.js on
// loopback. Each wait is for a condition in the page, bounded by a timeout:
// nothing depends on a timer winning a race.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchChromium, screenshot, startApp } from "./harness.js";

const WAIT = { timeout: 15_000 };

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** open loads path of app and waits until the client is live on transport in mode. */
async function open(app, path = "/page.html") {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(app.url + path);
  return { page, problems };
}

async function waitLive(page, transport, mode) {
  await page.waitForFunction(([t, m]) => {
    const s = window.page?.statuses.at(-1);
    return s?.state === "live" && s.transport === t && s.mode === m;
  }, [transport, mode], WAIT);
}

async function waitDelivered(page, n) {
  await page.waitForFunction((k) => window.page.got.length >= k, n, WAIT);
}

const delivered = (page) => page.evaluate(() => window.page.got.map((g) => ({ id: g.envelope.id, seq: g.envelope.seq, via: g.info.transport })));

describe("the bundle in Chromium", () => {
  test("legacy → shadow → primary → realtime → legacy: every notification once, in order, no reload", { timeout: 90_000 }, async () => {
    // The stand-in serves catch-up in legacy mode too: with the spec's 404,
    // what is published between the rollback to legacy and the page's next
    // answer reaches PartyKit only, before the page listens there, and no
    // catch-up can bring it back.
    const app = await startApp({ lifetimeMs: 1000, legacyCatchUp: true });
    const { page, problems } = await open(app);
    try {
      const loadId = await page.evaluate(() => window.page.loadId);
      const walk = [
        ["legacy", "partykit"], ["shadow", "partykit"], ["primary", "inngest"], ["realtime", "inngest"], ["legacy", "partykit"],
      ];
      const published = [];
      for (const [i, [mode, transport]] of walk.entries()) {
        app.setMode(mode);
        if (i > 0) published.push(app.publish(), app.publish()); // during the flip, before the page moved
        await waitLive(page, transport, mode);
        published.push(app.publish(), app.publish());
        await waitDelivered(page, published.length);
      }
      const got = await delivered(page);
      assert.deepEqual(got.map((g) => g.id), published.map((e) => e.id), "each once, in publish order");
      const vias = new Set(got.map((g) => g.via));
      assert.ok(vias.has("partykit") && vias.has("inngest"), `both transports carried messages: ${[...vias]}`);
      assert.equal(await page.evaluate(() => window.page.loadId), loadId, "no reload");
      assert.equal(await page.evaluate(() => window.page.statuses.at(-1).resets), 0);
      assert.deepEqual(problems, []);
      await screenshot(page, "realtime-client-walk");
    } finally {
      await page.close();
      await app.close();
    }
  });

  for (const [mode, transport] of [["shadow", "partykit"], ["primary", "inngest"]]) {
    test(`a cut ${transport} connection is repaired and what it missed is caught up`, { timeout: 60_000 }, async () => {
      const app = await startApp({ lifetimeMs: 30_000 });
      app.setMode(mode);
      const { page, problems } = await open(app);
      try {
        await waitLive(page, transport, mode);
        const before = app.publish();
        await waitDelivered(page, 1);
        app.cut();
        await page.waitForFunction(() => window.page.statuses.at(-1).state === "reconnecting", null, WAIT);
        const missed = [app.publish(), app.publish()]; // while no connection is open
        await waitLive(page, transport, mode);
        const after = app.publish();
        await waitDelivered(page, 4);
        const got = await delivered(page);
        assert.deepEqual(got.map((g) => g.id), [before, ...missed, after].map((e) => e.id));
        assert.deepEqual(got.slice(1, 3).map((g) => g.via), ["catchup", "catchup"]);
        assert.deepEqual(problems, []);
      } finally {
        await page.close();
        await app.close();
      }
    });
  }

  test("a room the app refuses (403) is reported once as final, and nothing is retried", { timeout: 30_000 }, async () => {
    const app = await startApp({ forbidden: ["vid_secret"] });
    const { page } = await open(app, "/page.html?room=vid_secret");
    try {
      await page.waitForFunction(() => window.page.errors.length > 0, null, WAIT);
      const errors = await page.evaluate(() => window.page.errors);
      assert.deepEqual(errors.map((e) => [e.phase, e.status, e.final]), [["token", 403, true]]);
      assert.equal((await page.evaluate(() => window.page.statuses.at(-1))).state, "failed");
      assert.equal(app.requests.length, 1);
      assert.deepEqual(app.connections(), { party: 0, inngest: 0 });
    } finally {
      await page.close();
      await app.close();
    }
  });
});

describe("useRealtimeRoom in Chromium", () => {
  test("renders the room's messages and follows a flip to Inngest", { timeout: 60_000 }, async () => {
    const app = await startApp({ lifetimeMs: 1000 });
    app.setMode("shadow");
    const { page, problems } = await open(app, "/react.html");
    try {
      await page.waitForFunction(() => window.reactView?.status.state === "live", null, WAIT);
      const first = [app.publish(), app.publish()];
      await page.waitForFunction(() => document.querySelectorAll("#messages li").length === 2, null, WAIT);
      app.setMode("primary");
      await page.waitForFunction(() => window.reactView.status.transport === "inngest", null, WAIT);
      const second = app.publish();
      await page.waitForFunction(() => document.querySelectorAll("#messages li").length === 3, null, WAIT);
      const items = await page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));
      assert.deepEqual(items, [
        `#${first[0].seq} video.asset.ready via partykit`,
        `#${first[1].seq} video.asset.ready via partykit`,
        `#${second.seq} video.asset.ready via inngest`,
      ]);
      assert.deepEqual(problems, []);
      await screenshot(page, "realtime-client-react");
    } finally {
      await page.close();
      await app.close();
    }
  });
});
