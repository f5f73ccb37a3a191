"""Python's websockets client against wsmachine's echo_server.

usage: python_client.py ws://127.0.0.1:PORT/
"""
import asyncio
import sys

from websockets.asyncio.client import connect

MESSAGES = ["hello", "ünïcödé ✓ 🦀", "", "x" * 70_000, bytes([0, 1, 2, 255]), bytes(200_000)]


async def main(url):
    # websockets offers permessage-deflate (client_max_window_bits) by default.
    async with connect(url, max_size=None) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert extensions.startswith("permessage-deflate"), "not negotiated: %r" % extensions
        for message in MESSAGES:
            await ws.send(message)
            echo = await ws.recv()
            assert echo == message, "echo differs for a %s of %d" % (type(message).__name__, len(message))
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(1000, "done")
    assert ws.close_code == 1000, ws.close_code
    print("python websockets client <-> wsmachine echo_server (%s): ok" % extensions)
    print("1 passed, 0 failed")


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
