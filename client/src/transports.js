// The two real transports, as factories (answer, handlers) → {close()}:
// the official inngest SDK's realtime subscription and partysocket. Each
// calls handlers.open() when it is live, handlers.message(data) with each
// envelope it receives, handlers.down() when a connection that reconnects
// by itself dropped, and handlers.closed(cause) when it ended for good.
import { subscribe as inngestSubscribe } from "inngest/realtime";
import PartySocket from "partysocket";

/**
 * inngestTransport subscribes with the token of an Inngest answer, passed
 * to the SDK as the token object it takes (key, channel, topics,
 * apiBaseUrl). The SDK does not reconnect: when its stream ends the
 * connection is closed for good, and the client asks for a fresh answer.
 * @param {{key: string, channel: string, topics: string[], apiBaseUrl?: string}} answer
 * @param {import("../dist/index.d.ts").TransportHandlers} handlers
 */
export function inngestTransport(answer, handlers) {
  let stopped = false;
  let sub = null;
  const token = { key: answer.key, channel: answer.channel, topics: answer.topics };
  if (answer.apiBaseUrl) token.apiBaseUrl = answer.apiBaseUrl;
  (async () => {
    const s = await inngestSubscribe(token);
    if (stopped) {
      s.unsubscribe("realtime-client: closed");
      return;
    }
    sub = s;
    handlers.open();
    const reader = s.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done || stopped) break;
      if (value?.kind === "data") handlers.message(value.data);
    }
    if (!stopped) handlers.closed(new Error("inngest: the subscription ended"));
  })().catch((err) => {
    // The SDK rejects with the websocket's error event, not an Error.
    if (!stopped) handlers.closed(err instanceof Error ? err : new Error("inngest: the websocket failed"));
  });
  return {
    close() {
      stopped = true;
      sub?.unsubscribe("realtime-client: closed");
    },
  };
}

/**
 * partykitTransport joins the PartyKit room of a PartyKit answer with
 * partysocket, which reconnects by itself (each reconnection is an open).
 * The answer's protocol ("ws" or "wss") is passed on, so that a plain-ws
 * PartyKit on another host than localhost is not dialled as wss.
 * @param {{partykit: {host: string, room: string, party?: string, protocol?: "ws" | "wss"}}} answer
 * @param {import("../dist/index.d.ts").TransportHandlers} handlers
 */
export function partykitTransport(answer, handlers) {
  const { host, room, party, protocol } = answer.partykit;
  const opts = { host, room, party: party ?? "main" };
  if (protocol === "ws" || protocol === "wss") opts.protocol = protocol;
  const ws = new PartySocket(opts);
  ws.addEventListener("open", () => handlers.open());
  ws.addEventListener("message", (e) => handlers.message(e.data));
  ws.addEventListener("close", () => handlers.down());
  return {
    close() {
      ws.close();
    },
  };
}

/** The transports subscribe uses unless options.transports says otherwise. */
export const defaultTransports = Object.freeze({ inngest: inngestTransport, partykit: partykitTransport });
