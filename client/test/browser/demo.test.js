// The demo's live page (examples/demo -serve) in headless Chromium, against
// the real servers: the Inngest realtime server code in-process, the real
// `partykit dev`, the video pipeline through realtime.Middleware and a
// broadcast.Broadcast whose modes come from a flags file, and the token
// endpoint of package tokens. The test builds the demo, starts it, rewrites
// its flags file and checks what the page delivered against what the demo
// published (GET /api/demo/published) and what its Go subscribers saw on
// each transport. Every wait is for a condition, bounded by a deadline.
//
// It prints, and saves as artifacts/demo-figures.json, the time from a
// flags change to the first message the page received on the new transport,
// and the delivery latency per transport of the page and of the Go
// subscribers in the same run.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rename, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as pause } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, launchChromium, screenshot } from "./harness.js";

const examples = fileURLToPath(new URL("../../../examples", import.meta.url));
const RECHECK_MS = 2000; // the demo's -recheck: how often a page asks where to listen
const TOKEN_LIFETIME_MS = 60_000; // an Inngest subscription token's
const SCOPES = ["video-upload", "video-ready", "transcript", "video-errored"];
const WAIT = { timeout: 20_000 };
/** Pacing of the publishes while a flip is under way: the resolution of the flip-to-moved figure. */
const PACE_MS = 100;

let dir;
let demo; // {url, child, output}
let browser;
let flagsPath;
let skip = false;
const figures = { flips: [] };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "realtime-demo-test-"));
  const bin = join(dir, "demo");
  const t = Date.now();
  await promisify(execFile)("go", ["build", "-o", bin, "./demo"], { cwd: examples, timeout: 180_000 });
  flagsPath = join(dir, "demo.flags");
  await writeFile(flagsPath, "REALTIME_DEFAULT_MODE=legacy\n");
  const built = Date.now() - t;
  demo = await startDemo(bin);
  if (/PartyKit\s+(not installed|off)/.test(demo.output.join("\n"))) {
    if (process.env.CI) throw new Error(`the PartyKit dev server is not installed (npm ci --prefix harness/partykit/server):\n${demo.output.join("\n")}`);
    skip = true;
    return;
  }
  browser = await launchChromium();
  console.log(`demo built in ${built} ms, serving at ${demo.url} and Chromium started ${Date.now() - t} ms after the start`);
}, { timeout: 240_000 });

after(async () => {
  await browser?.close();
  if (demo && !skip) await collectGo().catch(() => {});
  if (demo) {
    const exited = demo.child.exitCode === null ? once(demo.child, "exit") : Promise.resolve();
    demo.child.kill("SIGTERM");
    const ac = new AbortController();
    const late = pause(15_000, undefined, { signal: ac.signal }).then(() => demo.child.kill("SIGKILL"), () => {});
    await Promise.race([exited, late]);
    ac.abort();
  }
  if (dir) await rm(dir, { recursive: true, force: true });
  if (latency.go.inngest.length > 0) {
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(join(ARTIFACTS, "demo-figures.json"), JSON.stringify(report(), null, 2) + "\n");
    console.log(formatReport(report()));
  }
});

/** startDemo runs the demo in -serve mode and resolves once it printed the page's address. */
async function startDemo(bin) {
  const child = spawn(bin, ["-serve", "-addr", "127.0.0.1:0", "-flags", flagsPath, "-recheck", `${RECHECK_MS}ms`], {
    cwd: examples, stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  let url;
  const ready = new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        output.push(line);
        const m = /^Live page\s+(http:\/\/\S+?)\/?$/.exec(line);
        if (m && !url) {
          url = m[1];
          resolve();
        }
      }
    });
    child.stderr.on("data", (chunk) => output.push(String(chunk).trimEnd()));
    child.on("exit", (code) => reject(new Error(`the demo exited (${code}) before serving:\n${output.join("\n")}`)));
  });
  const ac = new AbortController();
  const timeout = pause(120_000, undefined, { signal: ac.signal }).then(() => {
    throw new Error(`the demo did not serve within 120s:\n${output.join("\n")}`);
  });
  try {
    await Promise.race([ready, timeout]);
  } finally {
    ac.abort();
    timeout.catch(() => {});
  }
  return { url, child, output };
}

async function api(path, method = "GET") {
  const res = await fetch(demo.url + path, { method });
  const body = await res.json();
  assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(body)}`);
  return body;
}

/** setFlags replaces the flags file atomically and returns when it did. */
async function setFlags(content) {
  const tmp = `${flagsPath}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, flagsPath);
  return Date.now();
}

const modeLine = (mode) => `REALTIME_DEFAULT_MODE=${mode}\n`;
/** The transport a page reads in a mode: PartyKit while its outcome counts. */
const reads = (mode) => (mode === "legacy" || mode === "shadow" ? "partykit" : "inngest");

/** publish runs the pipeline once and returns the ids it published. */
async function publish() {
  const { published } = await api("/api/demo/run", "POST");
  assert.equal(published.length, 4, "the pipeline publishes four notifications");
  for (const p of published) assert.equal(p.error, undefined, `${p.name}: ${p.error}`);
  return published.map((p) => p.id);
}

async function openPage() {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(demo.url + "/");
  return { page, problems };
}

/** waitLive waits until every scope's subscription is live on transport in mode. */
async function waitLive(page, transport, mode) {
  await page.waitForFunction(([scopes, t, m]) => scopes.every((s) => {
    const st = window.demo.statuses[s].at(-1);
    return st?.state === "live" && st.transport === t && st.mode === m;
  }), [SCOPES, transport, mode], WAIT);
}

async function waitDelivered(page, ids) {
  await page.waitForFunction((want) => {
    const got = new Set(window.demo.got.map((g) => g.id));
    return want.every((id) => got.has(id));
  }, ids, WAIT);
}

const got = (page) => page.evaluate(() => window.demo.got);

/** snap saves a screenshot once the page shows the latency of every row. */
async function snap(page, name) {
  await page.waitForFunction(() => document.querySelectorAll("#log .pending").length === 0, null, WAIT);
  return screenshot(page, name);
}

/**
 * flip rewrites the flags file and publishes, paced, until the page has
 * moved: every scope live on the mode's transport in that mode, and a
 * message published after the change received on it. Everything published
 * is delivered before each next publish. It records, per scope, the time
 * from the change to the first message on the new transport and to the
 * connection going live there.
 */
async function flip(page, content, mode, ids, from) {
  const transport = reads(mode);
  // An operator's change comes at any point of a page's renewal cycle;
  // right after the previous move it would always find the page just
  // renewed (the worst case). Sample the phase instead.
  await pause(Math.random() * RECHECK_MS);
  const t0 = await setFlags(content);
  const mine = [];
  const deadline = t0 + 30_000;
  for (;;) {
    const run = await publish();
    ids.push(...run);
    mine.push(...run);
    const moved = await page.evaluate(([scopes, t, m, mine]) => scopes.every((s) => {
      const st = window.demo.statuses[s].at(-1);
      return st.state === "live" && st.transport === t && st.mode === m &&
        window.demo.got.some((g) => g.scope === s && g.via === t && mine.includes(g.id));
    }), [SCOPES, transport, mode, mine]);
    if (moved) break;
    assert.ok(Date.now() < deadline, `the page did not move to ${transport} (${mode}) within 30s`);
    await pause(PACE_MS);
  }
  await waitDelivered(page, ids); // what was published during the move too
  if (from !== transport) {
    const [deliveries, statuses] = await page.evaluate(() => [window.demo.got, window.demo.statuses]);
    for (const s of SCOPES) {
      const first = deliveries.find((g) => g.scope === s && g.via === transport && mine.includes(g.id));
      const live = statuses[s].find((st) => st.at >= t0 && st.state === "live" && st.transport === transport);
      figures.flips.push({ to: mode, transport, scope: s, toMessage: first.receivedAt - t0, toLive: live.at - t0 });
    }
  }
  return mine;
}

/** checkCarried asserts that the Go subscriber on the transport a page names received each message too. */
async function checkCarried(deliveries) {
  const byTransport = deliveries.filter((g) => g.via !== "catchup");
  let pubs;
  const deadline = Date.now() + WAIT.timeout;
  for (;;) {
    pubs = new Map((await api("/api/demo/published")).published.map((p) => [p.id, p]));
    if (byTransport.every((g) => pubs.get(g.id)?.go[g.via] !== undefined) || Date.now() > deadline) break;
    await pause(100);
  }
  for (const g of byTransport) {
    assert.ok(pubs.get(g.id)?.go[g.via] !== undefined, `${g.name} ${g.id} came via ${g.via}, which did not carry it (mode ${pubs.get(g.id)?.mode})`);
  }
}

describe("the demo's live page against the real servers", () => {
  test("legacy → shadow → primary → realtime → legacy (and realtime, the kill switch): every notification once, no reload", { timeout: 120_000 }, async (t) => {
    if (skip) return t.skip("PartyKit dev server not installed");
    const { page, problems } = await openPage();
    const loadId = await page.evaluate(() => window.demo.loadId);
    // Realtime off: the page connects to PartyKit (the plan's smoke test).
    await waitLive(page, "partykit", "legacy");
    const ids = await publish();
    await waitDelivered(page, ids);

    const walk = [
      ["shadow", modeLine("shadow")], ["primary", modeLine("primary")], ["realtime", modeLine("realtime")],
      ["legacy", modeLine("legacy")], ["realtime", modeLine("realtime")],
      ["legacy", modeLine("realtime") + "REALTIME_KILL_SWITCH=true\n"], // the kill switch beats every mode
    ];
    let from = "partykit";
    for (const [mode, content] of walk) {
      await flip(page, content, mode, ids, from);
      if (mode === "primary" && from === "partykit") await snap(page, "demo-page"); // both transports in view
      from = reads(mode);
    }

    // Under the kill switch a page opened now reads PartyKit as well.
    const fresh = await openPage();
    await waitLive(fresh.page, "partykit", "legacy");
    const last = await publish();
    ids.push(...last);
    await waitDelivered(page, ids);
    await waitDelivered(fresh.page, last);
    assert.deepEqual((await got(fresh.page)).filter((g) => last.includes(g.id)).map((g) => g.via), ["partykit", "partykit", "partykit", "partykit"]);

    const deliveries = await got(page);
    assert.deepEqual(deliveries.map((g) => g.id).sort(), [...ids].sort(), "every notification once");
    const published = (await api("/api/demo/published")).published.map((p) => p.id);
    assert.deepEqual([...ids].sort(), [...published].sort(), "the page's list is the demo's");
    await checkCarried([...deliveries, ...(await got(fresh.page))]);
    for (const s of SCOPES) {
      const seqs = deliveries.filter((g) => g.scope === s).map((g) => g.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `${s}: in seq order`);
    }
    const statuses = await page.evaluate(() => window.demo.statuses);
    for (const s of SCOPES) {
      assert.ok(statuses[s].every((st) => st.state !== "failed" && st.resets === 0), `${s}: no failure, no reset`);
    }
    assert.equal(await page.evaluate(() => window.demo.loadId), loadId, "no reload");
    assert.deepEqual(await page.evaluate(() => window.demo.errors.filter((e) => e.final)), []);
    assert.deepEqual(problems, []);
    await snap(page, "demo-page-walk-end");
    await collect(page);
    await collect(fresh.page);
    await fresh.page.close();
    await page.close();
  });

  for (const mode of ["realtime", "legacy"]) {
    test(`a cut ${reads(mode)} connection is repaired and what was published meanwhile is caught up`, { timeout: 60_000 }, async (t) => {
      if (skip) return t.skip("PartyKit dev server not installed");
      await setFlags(modeLine(mode));
      await pollModes(mode);
      const { page, problems } = await openPage();
      const transport = reads(mode);
      await waitLive(page, transport, mode);
      const before = await publish();
      await waitDelivered(page, before);

      const { cut } = await api("/api/demo/cut?for=60s", "POST"); // refused until heal
      assert.ok(cut >= SCOPES.length, `the relays dropped the page's ${SCOPES.length} connections (dropped ${cut})`);
      await page.waitForFunction((scopes) => scopes.every((s) => window.demo.statuses[s].at(-1).state === "reconnecting"), SCOPES, WAIT);
      const missed = await publish(); // while the page has no connection
      await api("/api/demo/heal", "POST");
      await waitDelivered(page, missed);
      await waitLive(page, transport, mode);
      const afterCut = await publish();
      await waitDelivered(page, afterCut);

      const deliveries = await got(page);
      assert.deepEqual(deliveries.map((g) => g.id).sort(), [...before, ...missed, ...afterCut].sort(), "each once");
      for (const id of missed) assert.equal(deliveries.find((g) => g.id === id).via, "catchup", "what the cut missed came by catch-up");
      await checkCarried(deliveries);
      assert.deepEqual(problems, []);
      if (mode === "realtime") await snap(page, "demo-page-after-cut");
      await collect(page);
      await page.close();
    });
  }
});

/** pollModes waits until the demo's Broadcast routes every scope in mode. */
async function pollModes(mode) {
  const deadline = Date.now() + WAIT.timeout;
  for (;;) {
    const { scopes } = await api("/api/realtime/modes");
    if (scopes.every((s) => s.mode === mode)) return;
    assert.ok(Date.now() < deadline, `the demo did not take mode ${mode} from the flags file`);
    await pause(50);
  }
}

// --- figures ---------------------------------------------------------------

function quantile(xs, q) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}
const stat = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: xs.length ? Math.max(...xs) : null });

/** The latencies of every page, and of the Go subscribers, in ms. */
const latency = { page: { partykit: [], inngest: [], catchup: [] }, go: { partykit: [], inngest: [] } };

function report() {
  return {
    recheckMs: RECHECK_MS,
    tokenLifetimeMs: TOKEN_LIFETIME_MS,
    pacingMs: PACE_MS,
    flipToFirstMessageMs: stat(figures.flips.map((f) => f.toMessage)),
    flipToLiveMs: stat(figures.flips.map((f) => f.toLive)),
    flips: figures.flips,
    latencyMs: {
      page: Object.fromEntries(Object.entries(latency.page).map(([k, v]) => [k, stat(v)])),
      go: Object.fromEntries(Object.entries(latency.go).map(([k, v]) => [k, stat(v)])),
    },
  };
}

function formatReport(r) {
  const f = (s) => (s.n ? `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms (n=${s.n})` : "none");
  return [
    "",
    `flags change → first message on the new transport: ${f(r.flipToFirstMessageMs)}; → connection live there: ${f(r.flipToLiveMs)}`,
    `  against Recheck ${r.recheckMs} ms (the Inngest token lives ${r.tokenLifetimeMs / 1000} s); publishes paced every ~${r.pacingMs} ms plus a pipeline run`,
    "delivery latency, publish → callback:",
    ...Object.entries(r.latencyMs.page).map(([k, s]) => `  page via ${k.padEnd(8)} ${f(s)}`),
    ...Object.entries(r.latencyMs.go).map(([k, s]) => `  Go subscriber on ${k.padEnd(8)} ${f(s)}`),
  ].join("\n");
}

/** collect adds the latencies (publish → callback) of the messages page delivered. */
async function collect(page) {
  const deliveries = await page.evaluate(() => window.demo.got);
  const pubs = new Map((await api("/api/demo/published")).published.map((p) => [p.id, p]));
  for (const g of deliveries) {
    const p = pubs.get(g.id);
    if (p) latency.page[g.via].push(g.receivedAt - p.publishedAt);
  }
}

/** collectGo adds the Go subscribers' latencies of every message published. */
async function collectGo() {
  for (const p of (await api("/api/demo/published")).published) {
    for (const [tr, l] of Object.entries(p.go)) latency.go[tr].push(l);
  }
}
