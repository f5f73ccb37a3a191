// Node's `ws` against wsmachine, both roles, with permessage-deflate negotiated
// (checked on every connection).
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

const deflated = (ws) => {
  if (!/^permessage-deflate\b/.test(ws.extensions)) fail(`permessage-deflate not negotiated: "${ws.extensions}"`);
  return ws.extensions;
};

const [mode, arg] = process.argv.slice(2);
if (mode === "client") {
  // ws's default offer, then one that sets every parameter.
  const offers = [
    { threshold: 0 },
    { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 10 },
  ];
  const next = (n) => {
    if (n === offers.length) {
      console.log(`${offers.length} passed, 0 failed`);
      return;
    }
    const ws = new WebSocket(arg, { perMessageDeflate: offers[n] });
    ws.on("open", () => {
      const ext = deflated(ws);
      converse(ws, () => { console.log(`node ws client <-> wsmachine echo_server (${ext}): ok`); next(n + 1); });
    });
  };
  next(0);
} else {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(arg), perMessageDeflate: { threshold: 0 } });
  wss.on("connection", (ws) => {
    const ext = deflated(ws);
    converse(ws, () => {
      console.log(`node ws server (${ext}) <-> wsmachine echo_client: ok`);
      console.log("1 passed, 0 failed");
      wss.close();
    });
  });
  console.log("listening");
}
