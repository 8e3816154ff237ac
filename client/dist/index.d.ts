// Types of @coursebuilder/realtime-client (src/index.js and the bundle
// dist/realtime-client.js, which export the same names). Hand-written;
// test/types.test.js checks that every name here is exported and no other.

/** Envelope is what both transports carry and the catch-up request answers. */
export interface Envelope<Body = unknown> {
  /** The published data. */
  body: Body;
  requestId: string;
  /** The event name, such as "video.asset.ready". */
  name: string;
  /** The message id; each id is delivered once. */
  id?: string;
  /** The room's number of the message in its epoch; absent when the server's replay log was down. */
  seq?: number;
  /** The room's numbering; a new epoch means the log lost its history. */
  epoch?: number;
}

/** Which way a message reached the page: a transport, or the catch-up request. */
export type Via = "inngest" | "partykit" | "catchup";

/** MessageInfo is onMessage's second argument. */
export interface MessageInfo {
  /** The transport that carried the message, or "catchup". */
  transport: Via;
  /** When the client received it, in ms since the Unix epoch (the clock's now). */
  receivedAt: number;
}

/** Status is what onStatus receives on every change. */
export interface Status {
  /**
   * connecting: no connection is live yet; live: messages flow;
   * reconnecting: the connection dropped and is being replaced;
   * failed: a final error stopped the subscription (see onError).
   */
  state: "connecting" | "live" | "reconnecting" | "failed";
  /** The transport of the live connection, null before the first. */
  transport: "inngest" | "partykit" | null;
  /** The mode of the room's scope in the last answer: legacy, shadow, primary or realtime. */
  mode: string | null;
  /** How many resets happened: each one means messages were lost and cannot be repaired. */
  resets: number;
  /** Set on the call that reports a reset: reload the state the page shows. */
  reset?: true;
}

/** RealtimeError is what onError receives. */
export declare class RealtimeError extends Error {
  name: "RealtimeError";
  /** The step that failed; "callback" is an onMessage or onStatus that threw. */
  phase: "token" | "catchup" | "transport" | "callback";
  /** The endpoint's HTTP status, when it answered. */
  status?: number;
  /** True for 400, 401 and 403: retrying cannot help, and the subscription has stopped. */
  final: boolean;
  constructor(message: string, detail: { phase: RealtimeError["phase"]; status?: number; final?: boolean; cause?: unknown });
}

/** The Inngest form of the v=2 token answer, as parseAnswer returns it. */
export interface InngestAnswer {
  transport: "inngest";
  mode: string;
  expires?: string;
  names?: string[];
  /** The token object the inngest SDK's subscribe takes. */
  key: string;
  channel: string;
  topics: string[];
  apiBaseUrl?: string;
}

/** The PartyKit form of the v=2 token answer, as parseAnswer returns it. */
export interface PartyKitAnswer {
  transport: "partykit";
  mode: string;
  expires?: string;
  names?: string[];
  /** What partysocket takes: new PartySocket({host, room, party}). */
  partykit: { host: string; room: string; party: string; protocol?: "ws" | "wss" };
}

export type Answer = InngestAnswer | PartyKitAnswer;

/** CatchUp is a catch-up answer, as parseCatchUp returns it. */
export interface CatchUp {
  messages: unknown[];
  next: number;
  more: boolean;
  head: number;
  epoch: number;
  truncated: boolean;
}

/** TransportHandlers are what a transport calls. */
export interface TransportHandlers {
  /** The connection is live: messages published from now on arrive (called again on each reconnection). */
  open(): void;
  /** One message: an envelope, as an object or as JSON text. Anything else is ignored. */
  message(data: unknown): void;
  /** The connection dropped and the transport reconnects by itself. */
  down(): void;
  /** The connection ended for good; the client asks for a new answer and opens another. */
  closed(cause?: unknown): void;
}

/** A Transport opens one connection for an answer. */
export type Transport<A extends Answer = Answer> = (answer: A, handlers: TransportHandlers) => { close(): void };

/** Clock is what the client reads time from and sets its timers with. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Tuning holds the client's bounds; DEFAULTS has their defaults. */
export interface Tuning {
  seenSize: number;
  holdLimit: number;
  catchUpLimit: number;
  maxCatchUpFailures: number;
  maxIdleRounds: number;
  backoffBase: number;
  backoffMax: number;
  renewMin: number;
  renewMax: number;
  renewDefault: number;
  requestTimeout: number;
}

export interface SubscribeOptions {
  /** The token endpoint, such as "/api/realtime/token". Required. */
  tokenUrl: string;
  /** The scope of the room's messages, such as "video-ready". Required unless names is given. */
  scope?: string;
  /** Event names: sent to the endpoint, and only these are delivered (PartyKit carries the whole room). */
  names?: string[];
  /** The fetch to call the endpoint with. Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
  /** Receives every error; final ones have stopped the subscription. Defaults to console.error for final errors and throwing callbacks. */
  onError?: (error: RealtimeError) => void;
  /** Receives the status on every change, and each reset. */
  onStatus?: (status: Status) => void;
  /** Replaces transports by name; defaults to defaultTransports. For tests. */
  transports?: Partial<Record<"inngest" | "partykit", Transport<any>>>;
  /** Replaces Date.now and the global timers. For tests. */
  clock?: Clock;
  /** Replaces Math.random (backoff jitter). For tests. */
  random?: () => number;
  /** Overrides some of DEFAULTS. */
  tuning?: Partial<Tuning>;
}

/**
 * subscribe delivers the messages of room to onMessage, each id once and
 * in seq order per epoch, through whichever transport the token endpoint
 * names, until the returned function is called.
 */
export declare function subscribe<Body = unknown>(
  room: string,
  onMessage: (envelope: Envelope<Body>, info: MessageInfo) => void,
  options: SubscribeOptions,
): () => void;

/** decodeEnvelope returns the envelope in data (an object or JSON text), or null. */
export declare function decodeEnvelope(data: unknown): Envelope | null;
/** parseAnswer validates a v=2 token answer; it throws a RealtimeError for one it cannot use. */
export declare function parseAnswer(body: unknown): Answer;
/** parseCatchUp validates a catch-up answer; it throws a RealtimeError for one it cannot use. */
export declare function parseCatchUp(body: unknown): CatchUp;
/** The defaults of SubscribeOptions.tuning. */
export declare const DEFAULTS: Readonly<Tuning>;
/** The official inngest SDK's realtime subscription. */
export declare const inngestTransport: Transport<InngestAnswer>;
/** partysocket, which reconnects by itself. */
export declare const partykitTransport: Transport<PartyKitAnswer>;
/** The transports subscribe uses by default. */
export declare const defaultTransports: Readonly<{ inngest: Transport<InngestAnswer>; partykit: Transport<PartyKitAnswer> }>;
