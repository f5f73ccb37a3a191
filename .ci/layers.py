#!/usr/bin/env python3
"""The architecture check: each layer of src/ calls only the layers below it.

    frame, utf8 < message < deflate < handshake < connection < adapter

(deflate's parameter grammar is below the handshake that negotiates it.)
The shared vocabulary (config, error, close, entropy) may be used by every
layer and must itself use none of connection or adapter. The test kits
(testing, strategy, arbitrary) sit on top and are not checked.

Code lines only: comments and doc links may name any layer. A name imported
from the crate root (`use crate::{Connection, ...}`) counts as the module it
is re-exported from in lib.rs. Exits 1 and prints each breach.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
RANK = {"frame": 0, "utf8": 0, "message": 1, "deflate": 2, "handshake": 3,
        "connection": 4, "adapter": 5}
VOCABULARY = {"config", "error", "close", "entropy"}
NOT_BELOW = {"connection", "adapter"}  # what the vocabulary must not use


def root_exports():
    """Names re-exported at the crate root, with the module they come from."""
    lib = (SRC / "lib.rs").read_text()
    names = {}
    for module, body in re.findall(r"pub use (\w+)::\{([^}]*)\};", lib):
        for name in re.findall(r"\w+", body):
            names[name] = module
    for module, name in re.findall(r"pub use (\w+)::(\w+);", lib):
        names[name] = module
    return names


def code(text):
    """The text without comments and string literals."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def used_modules(text, exports):
    """Every top-level module (or re-exported name's module) a file uses."""
    found = set(re.findall(r"\bcrate::(\w+)", text))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        found.update(re.findall(r"(?:^|,)\s*(\w+)", group))
    return {exports.get(name, name) for name in found}


def owner(path):
    rel = path.relative_to(SRC).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def main():
    exports = root_exports()
    breaches = []
    for path in sorted(SRC.rglob("*.rs")):
        layer = owner(path)
        if layer not in RANK and layer not in VOCABULARY:
            continue
        for used in sorted(used_modules(code(path.read_text()), exports)):
            if layer in VOCABULARY:
                bad = used in NOT_BELOW
            else:
                bad = used in RANK and RANK[used] > RANK[layer]
            if bad:
                breaches.append(f"{path.relative_to(SRC.parent)}: {layer} uses {used}")
    for breach in breaches:
        print(breach)
    if breaches:
        print(f"{len(breaches)} imports from a higher layer (see .ci/layers.py)")
        return 1
    print("layers hold: frame, utf8 < message < deflate < handshake < connection < adapter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
