#!/usr/bin/env python3
"""A tiny stdio MCP backend that never re-encodes JSON, to check that a gateway
passes bytes through unchanged (tests/sdk_transparency.rs).

Newline-delimited JSON-RPC on stdin/stdout, standard library only. Each line
is parsed only to learn the method and id; what goes back is assembled from
raw text:

- `tools/call` of `raw_echo` answers a result whose `structuredContent` is
  RESULT_RAW below, copied byte for byte into the response line, and whose
  text content is the hex of the exact bytes of the request line received
  (so the test can look for the client's bytes in it). RESULT_RAW is the
  environment variable RAW_RESULT if set (the test sets it), else a
  default with the same ingredients.
- `initialize`, `ping`, the lists and `logging/setLevel` get minimal answers;
  other requests -32601; notifications are ignored.
"""

import json
import os
import sys

BIG = "1" + "234567890" * 11  # 100 digits
# Every JSON escape (\" \\ \/ \b \f \n \r \t, \u0000-\u001f, upper- and lowercase hex),
# a surrogate pair, and raw non-ASCII characters (2, 3 and 4 bytes in UTF-8).
ESCAPES = (
    r"q\" b\\ s\/ \b\f\n\r\t "
    + "".join(f"\\u{i:04x}" for i in range(0x20))
    + r" \u001F\u000A \ud83d\ude00 "
    + "é€😀"
)
RESULT_RAW = os.environ.get("RAW_RESULT") or (
    '{"big":' + BIG + ',"neg":-' + BIG + ',"s":"' + ESCAPES + '","spaced" : [ 1 ,\t2 ]}'
)

TOOL = {
    "name": "raw_echo",
    "description": "Answers fixed raw JSON and the hex of the request line it received",
    "inputSchema": {"type": "object"},
}


def send(line: bytes) -> None:
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.buffer.flush()


def answer(msg_id, result_json: str) -> None:
    send(('{"jsonrpc":"2.0","id":' + json.dumps(msg_id) + ',"result":' + result_json + "}").encode("utf-8"))


def main() -> None:
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            continue  # a notification or a response
        method, msg_id = msg["method"], msg["id"]
        if method == "initialize":
            version = msg.get("params", {}).get("protocolVersion", "2025-06-18")
            answer(
                msg_id,
                json.dumps(
                    {
                        "protocolVersion": version,
                        "capabilities": {"tools": {}, "logging": {}},
                        "serverInfo": {"name": "raw-backend", "version": "1"},
                    }
                ),
            )
        elif method == "tools/list":
            answer(msg_id, json.dumps({"tools": [TOOL]}))
        elif method in ("resources/list", "resources/templates/list", "prompts/list"):
            key = {"resources/list": "resources", "resources/templates/list": "resourceTemplates"}.get(
                method, "prompts"
            )
            answer(msg_id, json.dumps({key: []}))
        elif method in ("ping", "logging/setLevel"):
            answer(msg_id, "{}")
        elif method == "tools/call":
            received = line.hex()
            answer(
                msg_id,
                '{"content":[{"type":"text","text":"' + received + '"}],"structuredContent":' + RESULT_RAW + "}",
            )
        else:
            send(
                (
                    '{"jsonrpc":"2.0","id":'
                    + json.dumps(msg_id)
                    + ',"error":{"code":-32601,"message":"Method not found"}}'
                ).encode()
            )


if __name__ == "__main__":
    main()
