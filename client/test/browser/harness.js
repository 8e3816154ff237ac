// Test infrastructure for the browser tests: Debian's Chromium driven by
// playwright-core (a browser download cannot work here), and a stand-in for
// a realtime-go app on loopback that serves the pages, the bundle, the token
// endpoint (v=2 answers and catch-up, from a replay log) and both
// transports' websockets as a browser meets them (PartyKit's
// /parties/main/<room>, Inngest Realtime's /v1/realtime/connect?token=…).
// Publishing fans out per mode as broadcast.Broadcast does. The end-to-end
// tests against the real servers (the Go harness) can reuse launchChromium.
import { mkdtemp, readFile, rm, mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

/** The flags Chromium needs on this machine's closed network (see the
 * machine's notes): no background or component traffic, no QUIC, no GPU,
 * no sandbox as root. launchChromium adds a fresh --user-data-dir. */
export const CHROMIUM_FLAGS = Object.freeze([
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
]);

/** The Chromium used: CHROMIUM_PATH, or Debian's. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Where screenshots go: REALTIME_CLIENT_ARTIFACTS, or test/browser/artifacts. */
export const ARTIFACTS = process.env.REALTIME_CLIENT_ARTIFACTS || join(here, "artifacts");

/**
 * launchChromium starts headless Chromium with a new empty profile and
 * returns its playwright BrowserContext; close() closes it and removes the
 * profile.
 */
export async function launchChromium() {
  const profile = await mkdtemp(join(tmpdir(), "realtime-client-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      viewport: { width: 960, height: 640 },
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`cannot start Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH): ${err.message}`);
  }
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    await rm(profile, { recursive: true, force: true });
  };
  return context;
}

/** screenshot saves page as ARTIFACTS/name.png and returns the path. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await writeFile(path, await page.screenshot({ fullPage: true }));
  return path;
}

const SCOPES = { "video-ready": ["video.asset.ready"], transcript: ["transcript.ready"] };
/** Where each mode publishes, as broadcast.Broadcast does. */
const FANOUT = {
  legacy: { party: true, inngest: false },
  shadow: { party: true, inngest: true },
  primary: { party: true, inngest: true },
  realtime: { party: false, inngest: true },
};

/**
 * startApp serves the test pages and the bundle, and stands in for the app:
 *
 *   lifetimeMs     how long an answer holds (its expires); default 1000
 *   legacyCatchUp  serve catch-up in legacy mode too (the spec answers 404)
 *   forbidden      rooms answered 403
 *
 * It returns {url, setMode, publish, cut, connections, requests, close}.
 */
export async function startApp({ lifetimeMs = 1000, legacyCatchUp = false, forbidden = [] } = {}) {
  const state = { mode: "legacy", epoch: 1_780_000_000_000_000, head: 0, log: [] };
  const party = new Set(); // {ws, room}
  const inngest = new Set(); // {ws, channel, topics}
  const keys = new Map(); // key → {channel, topics}
  const requests = [];
  let minted = 0;

  const react = await build({
    entryPoints: [join(here, "react-page.jsx")], absWorkingDir: root, bundle: true, format: "esm",
    platform: "browser", jsx: "automatic", define: { "process.env.NODE_ENV": '"production"' }, write: false, logLevel: "warning",
  });
  const files = {
    "/page.html": ["text/html", await readFile(join(here, "page.html"))],
    "/react.html": ["text/html", await readFile(join(here, "react.html"))],
    "/realtime-client.js": ["text/javascript", await readFile(join(root, "dist/realtime-client.js"))],
    "/react-page.js": ["text/javascript", Buffer.from(react.outputFiles[0].contents)],
  };

  const http = createServer((req, res) => {
    const u = new URL(req.url, "http://app");
    if (u.pathname === "/api/realtime/token") return token(u, res);
    const f = files[u.pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": f[0], "cache-control": "no-store" }).end(f[1]);
  });

  function json(res, status, body) {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));
  }

  function token(u, res) {
    const q = u.searchParams;
    const room = q.get("room");
    const names = q.get("names")?.split(",") ?? SCOPES[q.get("scope")];
    const catchUp = q.has("after");
    requests.push({ kind: catchUp ? "catchup" : "token", mode: state.mode, params: q.toString() });
    if (!room || !names) return json(res, 400, { error: "invalid query" });
    if (forbidden.includes(room)) return json(res, 403, { error: "not authorized" });
    if (catchUp) {
      if (state.mode === "legacy" && !legacyCatchUp) return json(res, 404, { error: "realtime is not enabled for this scope" });
      const after = BigInt(q.get("after"));
      const limit = Number(q.get("limit") ?? 100);
      const read = state.log.filter((e) => BigInt(e.seq) > after).slice(0, limit);
      return json(res, 200, {
        messages: read.filter((e) => names.includes(e.name)),
        next: read.length ? read[read.length - 1].seq : Number(after),
        more: read.length === limit, head: state.head, epoch: state.head ? state.epoch : 0, truncated: false,
      });
    }
    const expires = new Date(Date.now() + lifetimeMs).toISOString();
    if (q.get("v") !== "2") {
      if (state.mode === "legacy") return json(res, 404, { error: "realtime is not enabled for this scope" });
    }
    if (state.mode === "legacy" || state.mode === "shadow") {
      return json(res, 200, { transport: "partykit", mode: state.mode, partykit: { host: `127.0.0.1:${port}`, room, party: "main" }, expires });
    }
    const key = `jwt_${++minted}`;
    keys.set(key, { channel: `ch_${room}`, topics: names });
    return json(res, 200, { transport: "inngest", mode: state.mode, channel: `ch_${room}`, topics: names, key, apiBaseUrl: `http://127.0.0.1:${port}`, expires });
  }

  const wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (req, socket, head) => {
    const u = new URL(req.url, "http://app");
    const partyRoom = u.pathname.match(/^\/parties\/main\/([^/]+)$/)?.[1];
    const key = u.pathname === "/v1/realtime/connect" ? keys.get(u.searchParams.get("token") ?? "") : undefined;
    if (!partyRoom && !key) {
      socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = partyRoom ? { ws, room: decodeURIComponent(partyRoom) } : { ws, ...key };
      const set = partyRoom ? party : inngest;
      set.add(conn);
      ws.on("close", () => set.delete(conn));
    });
  });

  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const port = http.address().port;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get mode() {
      return state.mode;
    },
    setMode(mode) {
      state.mode = mode;
    },
    /** publish numbers a message of room in the log and sends it where the mode says. */
    publish(room = "vid_1", name = "video.asset.ready") {
      state.head++;
      const env = {
        body: { videoResourceId: room, sentAt: Date.now() }, requestId: room, name,
        id: `msg_${state.head}`, seq: state.head, epoch: state.epoch,
      };
      state.log.push(env);
      const to = FANOUT[state.mode];
      if (to.party) for (const c of party) if (c.room === room) c.ws.send(JSON.stringify(env));
      if (to.inngest) {
        for (const c of inngest) {
          if (c.channel === `ch_${room}` && c.topics.includes(name)) {
            c.ws.send(JSON.stringify({ kind: "data", channel: c.channel, topic: name, data: env, created_at: new Date().toISOString() }));
          }
        }
      }
      return env;
    },
    /** cut drops every websocket without a close handshake. */
    cut() {
      for (const c of [...party, ...inngest]) c.ws.terminate();
    },
    connections: () => ({ party: party.size, inngest: inngest.size }),
    async close() {
      for (const c of [...party, ...inngest]) c.ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}
