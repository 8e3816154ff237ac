// subscribe.mjs fetches the body of GET /api/realtime/token from the URL in
// its first argument and passes it, unchanged, to subscribe() of the
// official inngest npm package (inngest/realtime), as a page does. It prints
// each message it receives as one JSON line on stdout,
//
//   {"channel":…,"topic":…,"kind":"data","data":<the published envelope>}
//
// and exits 0 after <count> messages, 2 when <timeout-ms> passes first, 3
// when the SDK would connect anywhere but this machine (a body without
// apiBaseUrl sends it to Inngest Cloud), and 1 on any other error. Status
// lines go to stderr.
//
//   node --experimental-websocket subscribe.mjs <token-url> <count> [timeout-ms]
//
// Node 20 needs --experimental-websocket for the global WebSocket the SDK
// uses; Node 22 and later have it by default.
import { subscribe } from "inngest/realtime";

const [tokenURL, countArg, timeoutArg] = process.argv.slice(2);
const count = Number.parseInt(countArg ?? "", 10);
const timeoutMs = Number.parseInt(timeoutArg ?? "15000", 10);
if (!tokenURL || !(count > 0) || !(timeoutMs > 0)) {
  console.error("usage: node --experimental-websocket subscribe.mjs <token-url> <count> [timeout-ms]");
  process.exit(64);
}

const timer = setTimeout(() => {
  console.error(`subscribe.mjs: timed out after ${timeoutMs} ms`);
  process.exit(2);
}, timeoutMs);

try {
  const res = await fetch(tokenURL, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`token endpoint answered ${res.status}: ${text}`);
  }
  const token = JSON.parse(text); // the body, unchanged
  console.error(`subscribe.mjs: token for channel ${JSON.stringify(token.channel)} at ${JSON.stringify(token.apiBaseUrl)}`);

  // The harness's servers are on loopback; the SDK dials
  // new URL("/v1/realtime/connect", apiBaseUrl), or Inngest Cloud without
  // one. Refuse to go anywhere else.
  const target = new URL("/v1/realtime/connect", token.apiBaseUrl ?? "https://api.inngest.com/");
  if (!["127.0.0.1", "localhost", "[::1]"].includes(target.hostname)) {
    console.error(`subscribe.mjs: the SDK would connect to ${target.origin}, not to the harness; refusing`);
    process.exit(3);
  }

  const stream = await subscribe(token);
  console.error("subscribe.mjs: subscribe() resolved");
  let seen = 0;
  const reader = stream.getReader();
  while (seen < count) {
    const { done, value } = await reader.read();
    if (done) {
      throw new Error(`the subscription ended after ${seen} of ${count} messages`);
    }
    process.stdout.write(
      JSON.stringify({ channel: value.channel, topic: value.topic, kind: value.kind, data: value.data }) + "\n",
    );
    seen++;
  }
  reader.releaseLock();
  stream.unsubscribe("subscribe.mjs: done");
  clearTimeout(timer);
  process.exit(0);
} catch (err) {
  console.error(`subscribe.mjs: ${err?.stack ?? err}`);
  process.exit(1);
}
