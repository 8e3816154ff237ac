// Types of @coursebuilder/realtime-client/react (src/react.js).
import type { Envelope, MessageInfo, Status, SubscribeOptions } from "./index.js";

/** A message as useRealtimeRoom keeps it: the envelope with how it came. */
export interface ReceivedMessage<Body = unknown> extends MessageInfo {
  envelope: Envelope<Body>;
}

export interface UseRealtimeRoomOptions extends SubscribeOptions {
  /** How many messages to keep, the newest. Defaults to 100. */
  keep?: number;
}

export interface RealtimeRoom<Body = unknown> {
  /** The messages received since the hook subscribed, oldest first. */
  messages: ReceivedMessage<Body>[];
  /** The client's status; status.resets changes when the page should reload its state. */
  status: Status;
}

/**
 * useRealtimeRoom subscribes to room while the component is mounted and
 * returns its messages and status. It resubscribes when room, tokenUrl,
 * scope or names change; a falsy room subscribes to nothing.
 */
export declare function useRealtimeRoom<Body = unknown>(
  room: string | null | undefined,
  options: UseRealtimeRoomOptions,
): RealtimeRoom<Body>;
