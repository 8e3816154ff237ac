// useRealtimeRoom: the React binding of subscribe, a thin hook. It
// subscribes while the component is mounted (and again when the room, the
// token URL, the scope or the names change) and returns the messages
// received so far, newest last, with the client's status.
import { useEffect, useRef, useState } from "react";
import { subscribe } from "./index.js";

const initialStatus = Object.freeze({ state: "connecting", transport: null, mode: null, resets: 0 });

/**
 * useRealtimeRoom returns {messages, status} for room. options are
 * subscribe's, plus keep: how many messages to keep (default 100). A falsy
 * room subscribes to nothing. options.onError and options.onStatus are
 * called as with subscribe; changing them does not resubscribe.
 * @param {string | null | undefined} room
 * @param {import("../dist/react.d.ts").UseRealtimeRoomOptions} options
 * @returns {import("../dist/react.d.ts").RealtimeRoom}
 */
export function useRealtimeRoom(room, options) {
  const [state, setState] = useState({ messages: [], status: initialStatus });
  const latest = useRef(options);
  latest.current = options;
  const names = options?.names?.join(",") ?? "";
  const { tokenUrl, scope } = options ?? {};

  useEffect(() => {
    setState({ messages: [], status: initialStatus });
    if (!room) return undefined;
    const keep = latest.current?.keep ?? 100;
    return subscribe(
      room,
      (envelope, info) => {
        setState((s) => ({ ...s, messages: [...s.messages, { envelope, ...info }].slice(-keep) }));
      },
      {
        ...latest.current,
        onStatus: (status) => {
          setState((s) => ({ ...s, status }));
          latest.current?.onStatus?.(status);
        },
        onError: (err) => latest.current?.onError?.(err),
      },
    );
  }, [room, tokenUrl, scope, names]);

  return state;
}
