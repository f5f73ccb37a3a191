"""Python's websockets client against wsmachine's echo_server run with
WSM_MAX_MESSAGE=LIMIT: messages of exactly LIMIT bytes pass compressed,
random (incompressible: larger on the wire) and text, with websockets' default
offer and with small window bits; one byte over gets 1009.

usage: python_limits.py ws://127.0.0.1:PORT/ LIMIT
"""
import asyncio
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

OFFERS = {
    "default offer": None,
    "window bits 9/10, memLevel 1": [ClientPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=9, compress_settings={"memLevel": 1})],
}


async def check(url, limit, name, extensions):
    kwargs = {"max_size": None}
    if extensions is not None:
        kwargs["extensions"] = extensions
    text = ("the quick brown fox jumps over the lazy dog " * (limit // 44 + 1))[:limit]
    async with connect(url, **kwargs) as ws:
        negotiated = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert negotiated.startswith("permessage-deflate"), negotiated
        for message in (os.urandom(limit), text):
            await ws.send(message)
            assert await ws.recv() == message, "echo differs at the limit"
        await ws.send(os.urandom(limit + 1))
        try:
            await ws.recv()
            raise AssertionError("one byte over the limit was echoed")
        except ConnectionClosedError as e:
            assert e.rcvd is not None and e.rcvd.code == 1009, e
    print("python websockets (%s: %s): %d bytes pass, %d get 1009" % (name, negotiated, limit, limit + 1))


async def main(url, limit):
    for name, extensions in OFFERS.items():
        await check(url, limit, name, extensions)
    print("%d passed, 0 failed" % len(OFFERS))


asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), 60))
