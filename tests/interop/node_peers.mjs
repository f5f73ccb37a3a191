// Node's `ws` against wsmachine, both roles, with permessage-deflate negotiated
// (checked on every connection).
//   node node_peers.mjs client ws://127.0.0.1:PORT/   -> ws client against our echo_server
//   node node_peers.mjs server PORT                    -> ws server for our echo_client
//   node node_peers.mjs limits ws://127.0.0.1:PORT/ N  -> messages of exactly N bytes
//     (random and text, compressed) pass an echo_server run with WSM_MAX_MESSAGE=N,
//     with ws's default offer and with small windows; N + 1 bytes get 1009
import { randomBytes } from "node:crypto";
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

const [mode, arg, limitArg] = process.argv.slice(2);
if (mode === "limits") {
  const limit = Number(limitArg);
  const text = "the quick brown fox jumps over the lazy dog ".repeat(limit / 44 + 1).slice(0, limit);
  const offers = [
    { name: "default offer", options: { threshold: 0 } },
    { name: "windows 9, memLevel 1", options: { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9, zlibDeflateOptions: { memLevel: 1 } } },
  ];
  const next = (n) => {
    if (n === offers.length) return console.log(`${offers.length} passed, 0 failed`);
    const { name, options } = offers[n];
    const ws = new WebSocket(arg, { perMessageDeflate: options, maxPayload: 0 });
    const sent = [randomBytes(limit), text];
    let i = 0;
    ws.on("open", () => { deflated(ws); ws.send(sent[0]); });
    ws.on("message", (data, isBinary) => {
      if (isBinary !== Buffer.isBuffer(sent[i]) || !same(data, sent[i])) fail(`${name}: echo ${i} differs`);
      if (++i < sent.length) ws.send(sent[i]);
      else ws.send(randomBytes(limit + 1));
    });
    ws.on("close", (code) => {
      if (i !== sent.length || code !== 1009) fail(`${name}: closed with ${code} after ${i}`);
      console.log(`node ws (${name}: ${ws.extensions}): ${limit} bytes pass, ${limit + 1} get 1009`);
      next(n + 1);
    });
    ws.on("error", (e) => fail(`${name}: ${e.message}`));
  };
  next(0);
} else if (mode === "client") {
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
