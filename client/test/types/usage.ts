// Compiled by test/types.test.js (tsc --noEmit): the declarations accept
// what the README shows and refuse what they must.
import { subscribe, RealtimeError, DEFAULTS, type Envelope, type MessageInfo, type Status, type Transport } from "../../dist/index.js";
import { useRealtimeRoom, type RealtimeRoom } from "../../dist/react.js";

interface VideoReady {
  videoResourceId: string;
}

const unsubscribe: () => void = subscribe<VideoReady>(
  "vid_1",
  (envelope: Envelope<VideoReady>, info: MessageInfo) => {
    const id: string = envelope.body.videoResourceId;
    const via: "inngest" | "partykit" | "catchup" = info.transport;
    const at: number = info.receivedAt;
    const seq: number | undefined = envelope.seq;
    void [id, via, at, seq];
  },
  {
    tokenUrl: "/api/realtime/token",
    scope: "video-ready",
    onStatus: (s: Status) => {
      if (s.reset) void s.resets;
      const state: "connecting" | "live" | "reconnecting" | "failed" = s.state;
      void state;
    },
    onError: (e: RealtimeError) => {
      if (e.final) void e.status;
    },
    tuning: { backoffMax: 10_000 },
  },
);
unsubscribe();

const fake: Transport = (_answer, handlers) => {
  handlers.open();
  handlers.message({ body: 1, requestId: "r", name: "n" });
  return { close() {} };
};
subscribe("vid_1", () => {}, { tokenUrl: "/t", names: ["video.asset.ready"], transports: { inngest: fake } });

const n: number = DEFAULTS.seenSize;
void n;

function View(): RealtimeRoom<VideoReady> {
  const room = useRealtimeRoom<VideoReady>("vid_1", { tokenUrl: "/api/realtime/token", scope: "video-ready", keep: 50 });
  const first: string | undefined = room.messages[0]?.envelope.body.videoResourceId;
  const via = room.messages[0]?.transport;
  void [first, via];
  return room;
}
void View;

// @ts-expect-error tokenUrl is required
subscribe("vid_1", () => {}, { scope: "video-ready" });
// @ts-expect-error the body is typed
subscribe<VideoReady>("vid_1", (e) => e.body.nope, { tokenUrl: "/t", scope: "s" });
// @ts-expect-error a status state is one of four
const bad: Status = { state: "open", transport: null, mode: null, resets: 0 };
void bad;
