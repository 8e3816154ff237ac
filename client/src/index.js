// @coursebuilder/realtime-client: subscribe(room, onMessage, options)
// follows the token endpoint of realtime-go (GET <tokenUrl>?…&v=2) onto the
// transport it names, Inngest Realtime (the official inngest SDK) or
// PartyKit (partysocket), and delivers each message once, in seq order,
// repairing what a gap or a reconnection missed from the catch-up request.
// Types: dist/index.d.ts.
import { subscribe as subscribeWith } from "./client.js";
import { defaultTransports } from "./transports.js";

export { DEFAULTS, RealtimeError, decodeEnvelope, parseAnswer, parseCatchUp } from "./client.js";
export { defaultTransports, inngestTransport, partykitTransport } from "./transports.js";

/**
 * subscribe delivers the messages of room to onMessage until the returned
 * function is called. See dist/index.d.ts for the options.
 * @param {string} room
 * @param {(envelope: any, info: {transport: "inngest"|"partykit"|"catchup", receivedAt: number}) => void} onMessage
 * @param {import("../dist/index.d.ts").SubscribeOptions} options
 * @returns {() => void}
 */
export function subscribe(room, onMessage, options) {
  return subscribeWith(room, onMessage, { ...options, transports: { ...defaultTransports, ...options?.transports } });
}
