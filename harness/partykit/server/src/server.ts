// The course-builder party (apps/*/party/index.ts in badass-courses/course-builder),
// reduced to what the realtime notifications rely on, for the Go test harness.
//
// What it keeps from the original:
//   - POST to a room: the body is read as JSON and broadcast, re-serialised with
//     JSON.stringify, to every websocket in the room; the answer is the text
//     "Party <room> has received <n> messages" (n is always 0: the original
//     never appends to its list). A body that is not JSON makes the request fail.
//   - GET answers {"users":[]} and OPTIONS answers {"ok":true}, both with the
//     same CORS headers; any other method gets 405.
//   - A websocket message is broadcast to the other connections of the room as
//     "<sender id>: <message>".
// What it leaves out: the Yjs document sync (y-partykit) and the database
// lookup that seeds it, which the notifications do not use.
import type * as Party from "partykit/server";

const corsHeaders = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET",
  "Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept",
};

export default class CourseBuilderParty implements Party.Server {
  messages: string[] = [];

  constructor(readonly room: Party.Room) {}

  async onStart() {
    this.messages = (await this.room.storage.get<string[]>("messages")) ?? [];
  }

  onConnect(conn: Party.Connection, ctx: Party.ConnectionContext) {
    console.log(`connected ${conn.id} to room ${this.room.id} (${new URL(ctx.request.url).pathname})`);
  }

  async onRequest(req: Party.Request) {
    switch (req.method) {
      case "GET":
        return Response.json({ users: [] }, { status: 200, headers: corsHeaders });
      case "OPTIONS":
        return Response.json({ ok: true }, { status: 200, headers: corsHeaders });
      case "POST": {
        const body: unknown = await req.json();
        const text = JSON.stringify(body);
        this.room.broadcast(text);
        console.log(`room ${this.room.id}: broadcast ${text.length} chars to ${[...this.room.getConnections()].length} connections`);
        return new Response(`Party ${this.room.id} has received ${this.messages.length} messages`);
      }
      default:
        return new Response("Method Not Allowed", { status: 405 });
    }
  }

  onMessage(message: string | ArrayBuffer | ArrayBufferView, sender: Party.Connection) {
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    this.room.broadcast(`${sender.id}: ${text}`, [sender.id]);
  }
}

CourseBuilderParty satisfies Party.Worker;
