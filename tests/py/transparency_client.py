#!/usr/bin/env python3
"""Server-to-client traffic through MCP Sentinel, as the official Python MCP SDK
(PyPI `mcp`, pinned in scripts/install-peers.sh) sees it, with
@modelcontextprotocol/server-everything behind the gateway.

    python transparency_client.py --url URL --transport sse|streamable-http --scenario NAME
                                  [--wait-for TOOL]... [--direct-url URL]

Scenarios (the tool names are server-everything's, unprefixed):

- `sampling`: a client with a sampling callback calls `trigger-sampling-request`.
- `elicitation`: form mode (`trigger-elicitation-request`) and URL mode
  (`trigger-url-elicitation`) with an elicitation callback.
- `roots`: a client with a list_roots callback calls `get-roots-list`, then
  changes its roots, sends `notifications/roots/list_changed` and waits until
  `get-roots-list` shows the new ones.
- `nocaps`: a client that declared no client capability calls the tools that
  need them; a client with form-only elicitation calls the URL-mode tool.
- `pair_sequential`: two sessions open at once take turns: each gets its own
  sampling request and its own log messages (and none at a level it turned off).
- `pair_overlap`: session A has a call in flight while session B's tool makes
  a sampling request (a stdio backend cannot tell whose it is).
- `pair_concurrent`: both sessions' sampling requests are outstanding at the
  same moment (their callbacks wait for each other).
- `overlap_logs`: session A has a call in flight while B subscribes to a
  resource; server-everything logs that subscribe while serving B's request.
- `subscribe`: two sessions subscribe to different resources; server-everything's
  simulated updates (`toggle-subscriber-updates`) reach only the subscriber;
  unsubscribing stops them.
- `list_tools`: lists the tools (waiting, bounded, until every `--wait-for` tool
  is listed), with every client capability declared, like the gateway declares
  to its backends. With `--direct-url`, first the same at that Streamable HTTP
  URL (server-everything itself), then at `--url` waiting for all of those.

Prints one JSON object with what the client saw (the Rust test asserts on it);
exit 0 unless the script itself could not run the scenario (then
`{"ok": false, "error": ...}` and exit 1). Every await is bounded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import warnings
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import mcp.types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")  # roots and sampling are deprecated in 2026-07-28; we test 2025-11-25

STEP_TIMEOUT_S = 20.0
SCENARIOS = (
    "sampling",
    "elicitation",
    "roots",
    "nocaps",
    "pair_sequential",
    "pair_overlap",
    "pair_concurrent",
    "overlap_logs",
    "subscribe",
    "list_tools",
)


class CheckFailed(Exception):
    """The scenario could not go on (a step a later one depends on failed)."""


async def bounded(aw: Any, what: str, seconds: float = STEP_TIMEOUT_S) -> Any:
    try:
        with anyio.fail_after(seconds):
            return await aw
    except TimeoutError:
        raise CheckFailed(f"timed out after {seconds}s: {what}") from None


def texts(result: Any) -> str:
    return "\n".join(c.text for c in getattr(result, "content", []) if getattr(c, "type", None) == "text")


class Client:
    """One session with a name, recording every server-to-client message it gets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sampling: list[dict[str, Any]] = []
        self.elicitations: list[dict[str, Any]] = []
        self.roots_asked = 0
        self.roots: list[types.Root] = []
        self.logs: list[dict[str, Any]] = []
        self.updates: list[str] = []
        self.list_changed = 0
        self.list_changed_event = anyio.Event()
        self.session: ClientSession | None = None
        # pair_concurrent: set on entry to the sampling callback, waited on by the peer's.
        self.sampling_entered = anyio.Event()
        self.peer: Client | None = None
        self.rendezvous: bool | None = None

    # --- callbacks ---------------------------------------------------------------

    async def on_sampling(self, ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        first = params.messages[0].content if params.messages else None
        self.sampling.append(
            {
                "text": getattr(first, "text", None),
                "max_tokens": params.max_tokens,
                "system_prompt": params.system_prompt,
            }
        )
        self.sampling_entered.set()
        if self.peer is not None:
            # Both sessions' requests are outstanding at the gateway once both got here.
            with anyio.move_on_after(10):
                await self.peer.sampling_entered.wait()
            self.rendezvous = self.peer.sampling_entered.is_set()
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled-by-{self.name}"),
            model=f"model-of-{self.name}",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen: dict[str, Any] = {"mode": getattr(params, "mode", None) or "form", "message": params.message}
        if isinstance(params, types.ElicitRequestURLParams):
            seen["url"] = params.url
            seen["elicitation_id"] = params.elicitation_id
            self.elicitations.append(seen)
            return types.ElicitResult(action="accept")
        schema = getattr(params, "requested_schema", None)
        props = schema.get("properties", {}) if isinstance(schema, dict) else getattr(schema, "properties", {}) or {}
        seen["fields"] = sorted(props)
        self.elicitations.append(seen)
        return types.ElicitResult(
            action="accept",
            content={"name": f"Ada of {self.name}", "check": True, "email": "ada@example.com", "integer": 7},
        )

    async def on_list_roots(self, ctx: Any) -> types.ListRootsResult:
        self.roots_asked += 1
        return types.ListRootsResult(roots=self.roots)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append({"level": params.level, "logger": params.logger, "data": params.data})

    async def on_message(self, message: Any) -> None:
        m = getattr(message, "root", message)
        method = getattr(m, "method", None)
        if method == "notifications/resources/updated":
            self.updates.append(str(m.params.uri))
        elif method == "notifications/tools/list_changed":
            self.list_changed += 1
            self.list_changed_event.set()

    # --- helpers -----------------------------------------------------------------

    async def call(self, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """A tool call as a user sees it: its text, isError, or the JSON-RPC error, and how long it took."""
        assert self.session is not None
        start = time.monotonic()
        try:
            result = await bounded(self.session.call_tool(tool, args, **kw), f"{self.name}: tools/call {tool}")
            out = {"text": texts(result), "is_error": bool(result.is_error)}
        except MCPError as e:
            out = {"error_code": e.code, "text": e.message, "is_error": True}
        out["elapsed_s"] = round(time.monotonic() - start, 3)
        return out

    def report(self) -> dict[str, Any]:
        return {
            "sampling": self.sampling,
            "elicitations": self.elicitations,
            "roots_asked": self.roots_asked,
            "logs": self.logs,
            "updates": self.updates,
            "list_changed": self.list_changed,
            "rendezvous": self.rendezvous,
        }


def callbacks(c: Client, caps: str) -> dict[str, Any]:
    """ClientSession keyword arguments declaring `caps` ("all", "none", "form-only")."""
    kw: dict[str, Any] = {"logging_callback": c.on_log, "message_handler": c.on_message}
    if caps == "all":
        kw.update(sampling_callback=c.on_sampling, elicitation_callback=c.on_elicitation)
        kw.update(list_roots_callback=c.on_list_roots)
    elif caps == "form-only":
        kw.update(elicitation_callback=c.on_elicitation)
    return kw


class FormOnlySession(ClientSession):
    """Declares form-mode elicitation only (the SDK declares form and URL together)."""

    def _build_capabilities(self, version: str) -> types.ClientCapabilities:
        caps = super()._build_capabilities(version)
        if caps.elicitation is not None:
            caps.elicitation = types.ElicitationCapability(form=types.FormElicitationCapability())
        return caps


@asynccontextmanager
async def connect(args: argparse.Namespace, c: Client, caps: str = "all") -> AsyncIterator[ClientSession]:
    cls = FormOnlySession if caps == "form-only" else ClientSession
    async with AsyncExitStack() as stack:
        if args.transport == "sse":
            r, w = await stack.enter_async_context(
                sse_client(args.url, timeout=STEP_TIMEOUT_S, sse_read_timeout=STEP_TIMEOUT_S * 3)
            )
        else:
            r, w = await stack.enter_async_context(streamable_http_client(args.url))
        session = await stack.enter_async_context(
            cls(r, w, read_timeout_seconds=STEP_TIMEOUT_S, client_info=types.Implementation(name=c.name, version="1"),
                **callbacks(c, caps))
        )
        await bounded(session.initialize(), f"{c.name}: initialize")
        c.session = session
        yield session


async def own_stream_ready(args: argparse.Namespace, clients: list[Client]) -> None:
    """Streamable HTTP: waits until every client's GET stream is open (the SDK opens it
    in the background after `initialized`), so that messages outside any call can reach
    it. Proof: a tools/list_changed, which the gateway sends to every session with a
    stream, caused by the demo backend's `demo__add_tool`. Legacy SSE has its stream
    from the start."""
    if args.transport == "sse":
        return
    with anyio.fail_after(15):
        while not all(c.list_changed_event.is_set() for c in clients):
            await clients[0].call("demo__add_tool", {})
            with anyio.move_on_after(0.3):
                for c in clients:
                    await c.list_changed_event.wait()


# --- scenarios -------------------------------------------------------------------


async def scenario_sampling(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Client("A")
    async with connect(args, a):
        out["call"] = await a.call("trigger-sampling-request", {"prompt": "sdk10 sampling prompt", "maxTokens": 42})
    out["A"] = a.report()


async def scenario_elicitation(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Client("A")
    async with connect(args, a):
        out["form"] = await a.call("trigger-elicitation-request", {})
        out["url"] = await a.call(
            "trigger-url-elicitation",
            {"url": "https://example.com/sdk10-consent", "message": "sdk10 url please", "elicitationId": "sdk10-e1"},
        )
    out["A"] = a.report()


async def scenario_roots(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Client("A")
    a.roots = [
        types.Root(uri="file:///sdk10/first-root", name="sdk10-first"),
        types.Root(uri="file:///sdk10/second-root", name="sdk10-second"),
    ]
    async with connect(args, a) as s:
        out["first"] = await a.call("get-roots-list", {})
        asked_before = a.roots_asked
        await own_stream_ready(args, [a])
        a.roots = [types.Root(uri="file:///sdk10/changed-root", name="sdk10-changed")]
        await bounded(s.send_roots_list_changed(), "roots/list_changed")
        # The backend asks for the roots again, outside any call; poll until it shows them.
        second: dict[str, Any] = {}
        with anyio.move_on_after(10):
            while True:
                second = await a.call("get-roots-list", {})
                if "sdk10-changed" in second.get("text", ""):
                    break
                await anyio.sleep(0.1)
        out["after_change"] = second
        out["asked_after_change"] = a.roots_asked - asked_before
    out["A"] = a.report()


async def scenario_nocaps(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Client("A")
    async with connect(args, a, caps="none"):
        out["sampling"] = await a.call("trigger-sampling-request", {"prompt": "nobody samples", "maxTokens": 5})
        out["elicitation"] = await a.call("trigger-elicitation-request", {})
        out["url"] = await a.call("trigger-url-elicitation", {"url": "https://example.com/none"})
        # server-everything swallows a failed roots/list; the demo backend reports what it got.
        out["roots"] = await a.call("demo__ask_client", {"method": "roots/list"})
    out["A"] = a.report()
    b = Client("B")
    async with connect(args, b, caps="form-only"):
        out["form_only_url"] = await b.call("trigger-url-elicitation", {"url": "https://example.com/form-only"})
    out["B"] = b.report()


async def scenario_pair_sequential(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a, b = Client("A"), Client("B")
    async with connect(args, a) as sa, connect(args, b) as sb:
        await bounded(sa.set_logging_level("debug"), "A: logging/setLevel")
        await bounded(sb.set_logging_level("debug"), "B: logging/setLevel")
        out["A_call"] = await a.call("trigger-sampling-request", {"prompt": "asked-by-A", "maxTokens": 11})
        out["B_call"] = await b.call("trigger-sampling-request", {"prompt": "asked-by-B", "maxTokens": 22})
        # server-everything logs (info) every subscribe it receives, while serving it.
        await bounded(sa.subscribe_resource("demo://resource/static/document/architecture.md"), "A: subscribe")
        await bounded(sb.subscribe_resource("demo://resource/static/document/features.md"), "B: subscribe")
        # A turns info off; its next subscribe's log must not reach it (nor B).
        await bounded(sa.set_logging_level("error"), "A: logging/setLevel error")
        await bounded(sa.subscribe_resource("demo://resource/static/document/structure.md"), "A: subscribe 2")
        # A message routed to the wrong session would be on its way by now; give it a moment.
        await bounded(sa.send_ping(), "A: ping")
        await bounded(sb.send_ping(), "B: ping")
        await anyio.sleep(0.5)
    out["A"] = a.report()
    out["B"] = b.report()


async def scenario_pair_overlap(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a, b = Client("A"), Client("B")
    async with connect(args, a), connect(args, b):
        a_progress = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            a_progress.set()

        async def a_long() -> None:
            out["A_call"] = await a.call(
                "trigger-long-running-operation", {"duration": 3, "steps": 6}, progress_callback=on_progress
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(a_long)
            # A's call is surely in flight at the backend once its first progress arrived.
            await bounded(a_progress.wait(), "A: first progress")
            out["B_call"] = await b.call("trigger-sampling-request", {"prompt": "asked-by-B", "maxTokens": 5})
    out["A"] = a.report()
    out["B"] = b.report()


async def scenario_overlap_logs(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a, b = Client("A"), Client("B")
    async with connect(args, a), connect(args, b) as sb:
        a_progress = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            a_progress.set()

        async def a_long() -> None:
            out["A_call"] = await a.call(
                "trigger-long-running-operation", {"duration": 2, "steps": 4}, progress_callback=on_progress
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(a_long)
            await bounded(a_progress.wait(), "A: first progress")
            # server-everything logs (info) the subscribe while serving B's request.
            await bounded(sb.subscribe_resource("demo://resource/static/document/features.md"), "B: subscribe")
        await anyio.sleep(0.5)
    out["A"] = a.report()
    out["B"] = b.report()


async def scenario_pair_concurrent(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a, b = Client("A"), Client("B")
    a.peer, b.peer = b, a
    async with connect(args, a), connect(args, b):

        async def run(c: Client) -> None:
            out[f"{c.name}_call"] = await c.call(
                "trigger-sampling-request", {"prompt": f"asked-by-{c.name}", "maxTokens": 9}
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, a)
            tg.start_soon(run, b)
    out["A"] = a.report()
    out["B"] = b.report()


async def scenario_subscribe(args: argparse.Namespace, out: dict[str, Any]) -> None:
    x = "demo://resource/static/document/architecture.md"
    y = "demo://resource/static/document/features.md"
    a, b = Client("A"), Client("B")

    async def wait_update(c: Client, uri: str, since: int, what: str) -> None:
        with anyio.fail_after(10):
            while uri not in c.updates[since:]:
                await anyio.sleep(0.02)

    async def restart_updates(c: Client) -> dict[str, Any]:
        """toggle-subscriber-updates twice: stop, then start (which sends one round at once)."""
        stop = await c.call("toggle-subscriber-updates", {})
        start = await c.call("toggle-subscriber-updates", {})
        return {"stop": stop["text"], "start": start["text"]}

    async with connect(args, a) as sa, connect(args, b) as sb:
        await own_stream_ready(args, [a, b])
        phases: dict[str, Any] = {}
        # Phase 1: A holds x, B holds y.
        await bounded(sa.subscribe_resource(x), "A: subscribe x")
        await bounded(sb.subscribe_resource(y), "B: subscribe y")
        na, nb = len(a.updates), len(b.updates)
        phases["toggle1"] = (await a.call("toggle-subscriber-updates", {}))["text"]
        try:
            await wait_update(a, x, na, "A: update of x")
            await wait_update(b, y, nb, "B: update of y")
        except TimeoutError:
            phases["timeout1"] = True
        await anyio.sleep(0.5)
        phases["p1"] = {"A": a.updates[na:], "B": b.updates[nb:]}
        # Phase 2: B subscribes to x too; A unsubscribes (B still holds x).
        await bounded(sb.subscribe_resource(x), "B: subscribe x")
        await bounded(sa.unsubscribe_resource(x), "A: unsubscribe x")
        na, nb = len(a.updates), len(b.updates)
        phases["toggle2"] = await restart_updates(a)
        try:
            await wait_update(b, x, nb, "B: update of x")
            await wait_update(b, y, nb, "B: update of y")
        except TimeoutError:
            phases["timeout2"] = True
        await anyio.sleep(0.5)
        phases["p2"] = {"A": a.updates[na:], "B": b.updates[nb:]}
        # Phase 3: B unsubscribes x (the last holder): only y is left.
        await bounded(sb.unsubscribe_resource(x), "B: unsubscribe x")
        na, nb = len(a.updates), len(b.updates)
        phases["toggle3"] = await restart_updates(a)
        try:
            await wait_update(b, y, nb, "B: update of y")
        except TimeoutError:
            phases["timeout3"] = True
        await anyio.sleep(0.5)
        phases["p3"] = {"A": a.updates[na:], "B": b.updates[nb:]}
        await a.call("toggle-subscriber-updates", {})  # stop
        out["phases"] = phases
    out["A"] = a.report()
    out["B"] = b.report()


async def list_until(args: argparse.Namespace, url: str, transport: str, wait_for: list[str]) -> list[str]:
    """The tool names at `url`, once every `wait_for` tool is listed (or after 10 s)."""
    a = Client("A")
    conn = argparse.Namespace(**{**vars(args), "url": url, "transport": transport})
    async with connect(conn, a) as s:
        names: list[str] = []
        with anyio.move_on_after(10):
            while True:
                listed = await bounded(s.list_tools(), f"tools/list at {url}")
                names = sorted(t.name for t in listed.tools)
                if all(w in names for w in wait_for):
                    break
                await anyio.sleep(0.1)
        return names


async def scenario_list_tools(args: argparse.Namespace, out: dict[str, Any]) -> None:
    wait_for = list(args.wait_for)
    if args.direct_url:
        # The same client, straight to the server: what the gateway should list.
        out["direct"] = await list_until(args, args.direct_url, "streamable-http", wait_for)
        wait_for = out["direct"]
    out["tools"] = await list_until(args, args.url, args.transport, wait_for)


RUNNERS = {name: globals()[f"scenario_{name}"] for name in SCENARIOS}


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": args.scenario, "transport": args.transport}
    with anyio.fail_after(args.total_timeout):
        await RUNNERS[args.scenario](args, out)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=("sse", "streamable-http"))
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--wait-for", action="append", default=[], help="list_tools: a tool to wait for")
    p.add_argument("--direct-url", help="list_tools: list at this Streamable HTTP URL first, then wait for all of them")
    p.add_argument("--total-timeout", type=float, default=50.0)
    args = p.parse_args()
    try:
        out = anyio.run(run, args)
    except BaseException as e:  # noqa: BLE001 - report every failure as one line
        leaf = first_leaf(e)
        if isinstance(leaf, TimeoutError):
            msg = f"timed out after {args.total_timeout}s overall"
        elif isinstance(leaf, MCPError):
            msg = f"MCP error {leaf.code}: {leaf.message}"
        else:
            msg = f"{type(leaf).__name__}: {leaf}"
        if not isinstance(leaf, CheckFailed):
            traceback.print_exception(leaf, file=sys.stderr)
        print(json.dumps({"ok": False, "scenario": args.scenario, "transport": args.transport, "error": msg}))
        print(f"transparency_client: {args.scenario} over {args.transport} FAILED: {msg}", file=sys.stderr)
        return 1
    out["ok"] = True
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
