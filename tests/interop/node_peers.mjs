// Node's `ws` against wsmachine, both roles.
//   node node_peers.mjs client ws://127.0.0.1:PORT/   -> ws client against our echo_server
//   node node_peers.mjs server PORT                    -> ws server for our echo_client
import { WebSocket, WebSocketServer } from "ws";

const messages = [
  "hello", "ünïcödé ✓ 🦀", "", "x".repeat(70_000),
  Buffer.from([0, 1, 2, 255]), Buffer.alloc(200_000, 7),
];
const same = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const fail = (why) => { console.log(`node ws: ${why}`); console.log("0 passed, 1 failed"); process.exit(1); };
setTimeout(() => fail("timed out"), 20_000).unref();

// Sends every message, expects each echoed with its type, then closes with 1000.
function converse(ws, done) {
  let i = 0;
  ws.on("message", (data, isBinary) => {
    const want = messages[i];
    if (isBinary !== Buffer.isBuffer(want) || !same(data, want)) fail(`echo ${i} differs`);
    if (++i < messages.length) ws.send(messages[i]);
    else ws.close(1000, "done");
  });
  ws.on("close", (code) => (code === 1000 && i === messages.length ? done() : fail(`closed with ${code} after ${i}`)));
  ws.on("error", (e) => fail(e.message));
  ws.send(messages[0]);
}

const [mode, arg] = process.argv.slice(2);
if (mode === "client") {
  const ws = new WebSocket(arg, { perMessageDeflate: false });
  ws.on("open", () => converse(ws, () => { console.log("node ws client <-> wsmachine echo_server: ok"); console.log("1 passed, 0 failed"); }));
} else {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(arg) });
  wss.on("connection", (ws) => converse(ws, () => {
    console.log("node ws server <-> wsmachine echo_client: ok");
    console.log("1 passed, 0 failed");
    wss.close();
  }));
  console.log("listening");
}
