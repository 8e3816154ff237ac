// wsurl.mjs prints, as one JSON line, the websocket URL that subscribe() of
// the official inngest npm package (inngest/realtime) opens for the token
// object given as JSON in its first argument. It replaces the global
// WebSocket with a recorder, so nothing is dialed.
//
//   node wsurl.mjs '{"channel":"c","topics":["t"],"key":"k"}'
import { subscribe } from "inngest/realtime";

const token = JSON.parse(process.argv[2] ?? "null");
if (!token || typeof token !== "object") {
  console.error("usage: node wsurl.mjs <token object as JSON>");
  process.exit(64);
}

let opened = null;
globalThis.WebSocket = class {
  constructor(url) {
    opened = String(url);
    queueMicrotask(() => this.onopen?.());
  }
  close() {}
};

const stream = await subscribe(token);
stream.unsubscribe("wsurl.mjs: done");
process.stdout.write(JSON.stringify({ url: opened }) + "\n");
process.exit(0);
