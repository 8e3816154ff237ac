// The README's React example, bundled by the test harness with esbuild.
import { createRoot } from "react-dom/client";
import { useRealtimeRoom } from "../../src/react.js";

function VideoStatus({ videoId }) {
  const { messages, status } = useRealtimeRoom(videoId, { tokenUrl: "/api/realtime/token", scope: "video-ready" });
  window.reactView = { messages, status };
  return (
    <section>
      <h1>Video {videoId}</h1>
      <p id="status">{status.state} · {status.transport ?? "—"} · mode {status.mode ?? "—"}</p>
      <ul id="messages">
        {messages.map((m) => (
          <li key={m.envelope.id}>
            #{m.envelope.seq} {m.envelope.name} via {m.transport}
          </li>
        ))}
      </ul>
    </section>
  );
}

createRoot(document.getElementById("root")).render(<VideoStatus videoId="vid_1" />);
