#!/usr/bin/env python3
"""The official Python MCP SDK's stdio client (PyPI `mcp`, pinned in
scripts/install-peers.sh) launching `mcp-sentinel stdio` in front of a
gateway, as Claude Desktop would.

    python stdio_bridge_client.py --bin PATH --url URL [--token-env VAR] [--mode legacy|2026-07-28]

Behind the gateway: the demo backend (`echo`, `ask_client`, ...).

1. Lists the tools, calls `echo`, and `ask_client` with `elicitation/create`
   and `sampling/createMessage`: the gateway sends those requests to this
   client through the bridge (in 2026-07-28 as `input_required` results
   that the SDK answers by retrying the call); `echo` while `slow` runs,
   then `slow` cancelled, and the demo backend's `cancellations` showing it.
2. Prints `{"phase": "before", ...}` and the line `RESTART`, then waits
   (at most 120 s) for a line on stdin: the test restarts the gateway
   meanwhile (`--no-restart` skips this and what follows).
3. Lists the tools and calls `echo` again through the same bridge process,
   calls `add_tool` and waits (bounded) for `notifications/tools/list_changed`
   (from the gateway's GET stream), and prints `{"phase": "after", ...}`.

Every await is bounded. On a failure: `{"ok": false, "error": ...}` and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from typing import Any

import anyio
import anyio.to_thread
import mcp.types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

warnings.simplefilter("ignore")  # sampling is deprecated in 2026-07-28

STEP_TIMEOUT_S = 20.0
RESTART_WAIT_S = 120.0


class CheckFailed(Exception):
    """The scenario could not go on."""


async def bounded(aw: Any, what: str, seconds: float = STEP_TIMEOUT_S) -> Any:
    try:
        with anyio.fail_after(seconds):
            return await aw
    except TimeoutError:
        raise CheckFailed(f"timed out after {seconds}s: {what}") from None


def texts(result: Any) -> str:
    return "\n".join(c.text for c in getattr(result, "content", []) if getattr(c, "type", None) == "text")


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Peer:
    """Answers the gateway's requests and records them."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.list_changed = anyio.Event()

    async def on_message(self, message: Any) -> None:
        m = getattr(message, "root", message)
        if getattr(m, "method", None) == "notifications/tools/list_changed":
            self.list_changed.set()

    async def on_sampling(self, ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="sampled-through-the-bridge"),
            model="bridge-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append("elicitation")
        return types.ElicitResult(action="accept", content={})


async def cancel_slow(c: Client) -> dict[str, Any]:
    """`slow` in flight: `echo` answered meanwhile (a slow call does not hold
    up others), then `slow` cancelled (anyio cancel scope: the SDK sends
    notifications/cancelled) and the demo's `cancellations` polled (bounded)
    until it lists the cancel."""
    before = texts(await bounded(c.call_tool("cancellations", {}), "cancellations"))
    started = anyio.Event()
    out: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async def run() -> None:
        r = await c.call_tool("slow", {"steps": 100, "interval_ms": 100}, progress_callback=on_progress)
        out["finished"] = texts(r)

    with anyio.move_on_after(STEP_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            with anyio.move_on_after(10):
                await started.wait()
            out["progress_seen"] = started.is_set()
            r = await bounded(c.call_tool("echo", {"message": "meanwhile"}), "echo during slow", 5)
            out["echo_meanwhile"] = texts(r)
            tg.cancel_scope.cancel()
    out["cancelled"] = "finished" not in out
    with anyio.fail_after(10):
        while True:
            now = texts(await bounded(c.call_tool("cancellations", {}), "cancellations"))
            if now != before:
                out["backend_saw_cancel"] = True
                break
            await anyio.sleep(0.1)
    return out


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def phase(c: Client, peer: Peer, asks: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    listed = await bounded(c.list_tools(), "tools/list")
    out["tools"] = sorted(t.name for t in listed.tools)
    r = await bounded(c.call_tool("echo", {"message": "through the bridge"}), "tools/call echo")
    out["echo"] = texts(r)
    if asks:
        r = await bounded(c.call_tool("ask_client", {"method": "elicitation/create"}), "ask_client elicitation")
        out["elicitation"] = texts(r)
        r = await bounded(c.call_tool("ask_client", {"method": "sampling/createMessage"}), "ask_client sampling")
        out["sampling"] = texts(r)
        out["asked"] = list(peer.asked)
        out["cancel"] = await cancel_slow(c)
    return out


async def main(args: argparse.Namespace) -> int:
    bridge = ["stdio", "--url", args.url, "--log-level", "info"]
    env: dict[str, str] = {}
    if args.token_env:
        bridge += ["--token-env", args.token_env]
        env[args.token_env] = "token-for-the-bridge"
    peer = Peer()
    client = Client(
        StdioServerParameters(command=args.bin, args=bridge, env=env),
        mode=args.mode,
        read_timeout_seconds=STEP_TIMEOUT_S,
        sampling_callback=peer.on_sampling,
        elicitation_callback=peer.on_elicitation,
        message_handler=peer.on_message,
        cache=None,  # every list reaches the gateway, and list_changed the handler
    )
    async with client as c:
        before = await phase(c, peer, asks=True)
        emit({"phase": "before", **before})
        if args.no_restart:
            return 0
        print("RESTART", flush=True)
        with anyio.fail_after(RESTART_WAIT_S):
            line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            raise CheckFailed("stdin closed before the gateway was restarted")
        after = await phase(c, peer, asks=False)
        # The gateway announces the new tool on the GET stream of the
        # session the bridge made after the restart.
        await bounded(c.call_tool("add_tool", {}), "add_tool")
        with anyio.move_on_after(STEP_TIMEOUT_S):
            await peer.list_changed.wait()
        after["list_changed"] = peer.list_changed.is_set()
        emit({"phase": "after", **after})
    return 0


def cli() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--token-env")
    p.add_argument("--mode", default="legacy", choices=("legacy", "2026-07-28"))
    p.add_argument("--no-restart", action="store_true")
    args = p.parse_args()
    try:
        return anyio.run(main, args)
    except BaseException as e:  # noqa: BLE001 - report whatever ended the run
        leaf = first_leaf(e)
        emit({"ok": False, "error": f"{type(leaf).__name__}: {leaf}"})
        traceback.print_exception(leaf, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(cli())
