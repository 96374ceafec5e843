#!/usr/bin/env python3
"""MCP 2026-07-28 ("modern") and legacy clients through MCP Sentinel, as the
official Python MCP SDK (PyPI `mcp` 2.3.0, pinned in scripts/install-peers.sh)
sees them: `mcp.client.Client` with `mode="2026-07-28"` (pinned, no
`initialize`), `"legacy"` (the `initialize` handshake) or `"auto"` (probe
`server/discover`, fall back to `initialize`).

    python era_client.py --url URL --transport sse|streamable-http --mode 2026-07-28|legacy|auto
                         --scenario NAME [--prefix m__] [--never-answer]

Behind the URL: tests/py/modern_server.py (its tools are reached as
`<prefix><tool>`, `m__` through the gateway, `` directly), and, through the
gateway only, server-everything (no prefix) and the demo backend (`demo__`).

Scenarios:

- `discover`: connects (mode `auto` makes the SDK probe `server/discover`);
  reports the negotiated version, the server's name and capabilities, and
  the tool names.
- `lists`: tools, prompts, resources and templates with their `ttlMs` and
  `cacheScope` (the client cache off), and the tools listed a second time.
- `forward`: `echo`, `prompts/get greet`, `resources/read note://todo`,
  `completion/complete` of greet's `name`.
- `mrtr`: `deploy`, `ask_llm`, `list_roots_tool` (the modern backend's MRTR
  tools) with all three callbacks; what each callback was asked.
- `nocaps`: the same three tools from a client that declared no capability.
- `legacy_backend`: server-everything's `trigger-elicitation-request`,
  `trigger-sampling-request` and `get-roots-list` (its server-to-client requests).
- `listen`: modern: A listens (`toolsListChanged`, `resourceSubscriptions`
  `note://todo`); B calls `enable_extra`, then `update_note`; what A's listen
  yielded, and A's lists afterwards. Legacy: A (whose stream is open from the
  start on /sse) waits for `notifications/tools/list_changed` after B's
  `enable_extra`.
- `cancel`: `slow` cancelled (anyio cancel scope) at its first progress, then
  the backend's `was_cancelled` polled (bounded) until it reports it; with
  `--demo`, the same for the demo backend's `slow`, checked with its
  `cancellations` tool.
- `logs`: four clients call `chatty` one after the other: A at log level
  info, B at info, C with none, D at error; each one's log messages.
  `--concurrent`: A and B call at the same time.
- `trace`: `trace` with `_meta` traceparent/tracestate/baggage; what the backend got.
- `never_answers`: an elicitation callback that never returns; `deploy`'s
  outcome and how long it took.
- `basics`: `lists`, `forward` and `mrtr` in one run (under those keys).

Prints one JSON object (`"ok": true` and what the client saw); on a failure of
the script itself `{"ok": false, "error": ...}` and exit 1. Every await is bounded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import warnings
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import mcp.types as types
from mcp.client import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")  # roots, sampling and logging are deprecated in 2026-07-28

STEP_TIMEOUT_S = 20.0
MODES = ("2026-07-28", "legacy", "auto")
SCENARIOS = (
    "discover",
    "lists",
    "forward",
    "mrtr",
    "nocaps",
    "legacy_backend",
    "listen",
    "cancel",
    "logs",
    "trace",
    "never_answers",
    "basics",
)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
BAGGAGE = "userId=alice,serverNode=DF%2028"


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


def hints(result: Any) -> dict[str, Any]:
    return {
        "ttl_ms": getattr(result, "ttl_ms", None),
        "cache_scope": getattr(result, "cache_scope", None),
        "result_type": getattr(result, "result_type", None),
    }


class Peer:
    """One client, recording what the server asked it and sent it."""

    def __init__(self, name: str, never_answer: bool = False) -> None:
        self.name = name
        self.never_answer = never_answer
        self.sampling: list[dict[str, Any]] = []
        self.elicitations: list[dict[str, Any]] = []
        self.roots_asked = 0
        self.logs: list[Any] = []
        self.list_changed = 0
        self.list_changed_event = anyio.Event()

    async def on_sampling(self, ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        first = params.messages[0].content if params.messages else None
        self.sampling.append({"text": getattr(first, "text", None), "max_tokens": params.max_tokens})
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled-by-{self.name}"),
            model=f"model-of-{self.name}",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        schema = getattr(params, "requested_schema", None)
        props = schema.get("properties", {}) if isinstance(schema, dict) else getattr(schema, "properties", {}) or {}
        self.elicitations.append(
            {"mode": getattr(params, "mode", None) or "form", "message": params.message, "fields": sorted(props)}
        )
        if self.never_answer:
            await anyio.sleep_forever()
        known = {
            "ok": True,
            "name": f"Ada of {self.name}",
            "check": True,
            "email": "ada@example.com",
            "integer": 7,
        }
        return types.ElicitResult(action="accept", content={k: v for k, v in known.items() if k in props})

    async def on_list_roots(self, ctx: Any) -> types.ListRootsResult:
        self.roots_asked += 1
        return types.ListRootsResult(
            roots=[types.Root(uri=f"file:///eras/{self.name}-root", name=f"root-of-{self.name}")]
        )

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)

    async def on_message(self, message: Any) -> None:
        m = getattr(message, "root", message)
        if getattr(m, "method", None) == "notifications/tools/list_changed":
            self.list_changed += 1
            self.list_changed_event.set()

    def report(self) -> dict[str, Any]:
        return {
            "sampling": self.sampling,
            "elicitations": self.elicitations,
            "roots_asked": self.roots_asked,
            "logs": self.logs,
            "list_changed": self.list_changed,
        }


@asynccontextmanager
async def connect(
    args: argparse.Namespace, peer: Peer, caps: bool = True, log_level: str | None = None
) -> AsyncIterator[Client]:
    kw: dict[str, Any] = {
        "mode": args.mode,
        "read_timeout_seconds": STEP_TIMEOUT_S,
        "client_info": types.Implementation(name=f"era-{peer.name}", version="1"),
        "logging_callback": peer.on_log,
        "message_handler": peer.on_message,
        "log_level": log_level,
        "cache": None,  # every list and read reaches the server
    }
    if caps:
        kw.update(
            sampling_callback=peer.on_sampling,
            elicitation_callback=peer.on_elicitation,
            list_roots_callback=peer.on_list_roots,
        )
    server: Any = args.url
    if args.transport == "sse":
        server = sse_client(args.url, timeout=STEP_TIMEOUT_S, sse_read_timeout=STEP_TIMEOUT_S * 3)
    client = Client(server, **kw)
    async with client:
        yield client


async def call(c: Client, tool: str, arguments: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A tool call as a user sees it: its text, isError, or the error, and how long it took."""
    start = time.monotonic()
    timeout = kw.pop("timeout", STEP_TIMEOUT_S)
    try:
        result = await bounded(c.call_tool(tool, arguments, **kw), f"tools/call {tool}", timeout)
        out: dict[str, Any] = {
            "text": texts(result),
            "is_error": bool(result.is_error),
            "result_type": getattr(result, "result_type", None),
        }
    except MCPError as e:
        out = {"error_code": e.code, "text": e.message, "is_error": True}
    except CheckFailed as e:
        out = {"timed_out": True, "text": str(e), "is_error": True}
    out["elapsed_s"] = round(time.monotonic() - start, 3)
    return out


def pfx(args: argparse.Namespace, tool: str) -> str:
    return f"{args.prefix}{tool}"


# --- scenarios -------------------------------------------------------------------


async def scenario_discover(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        out["protocol_version"] = c.protocol_version
        info = c.server_info
        out["server_name"] = info.name if info is not None else None
        caps = c.session.server_capabilities
        out["capabilities"] = caps.model_dump(mode="json", by_alias=True, exclude_none=True) if caps else None
        listed = await bounded(c.list_tools(), "tools/list")
        out["tools"] = [t.name for t in listed.tools]


async def scenario_lists(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        r = await bounded(c.list_tools(), "tools/list")
        out["tools"] = {"names": [t.name for t in r.tools], **hints(r)}
        r = await bounded(c.list_prompts(), "prompts/list")
        out["prompts"] = {"names": [p.name for p in r.prompts], **hints(r)}
        r = await bounded(c.list_resources(), "resources/list")
        out["resources"] = {"names": [str(x.uri) for x in r.resources], **hints(r)}
        r = await bounded(c.list_resource_templates(), "resources/templates/list")
        out["templates"] = {"names": [t.uri_template for t in r.resource_templates], **hints(r)}
        r = await bounded(c.list_tools(), "tools/list again")
        out["tools_again"] = [t.name for t in r.tools]


async def scenario_forward(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        out["echo"] = await call(c, pfx(args, "echo"), {"text": "hello eras"})
        p = await bounded(c.get_prompt(pfx(args, "greet"), {"name": "bob"}), "prompts/get")
        out["prompt"] = {"text": getattr(p.messages[0].content, "text", None), **hints(p)}
        r = await bounded(c.read_resource("note://todo"), "resources/read")
        out["read"] = {"text": getattr(r.contents[0], "text", None), **hints(r)}
        ref = types.PromptReference(type="ref/prompt", name=pfx(args, "greet"))
        comp = await bounded(c.complete(ref, {"name": "name", "value": "a"}), "completion/complete")
        out["complete"] = {"values": comp.completion.values, **hints(comp)}


async def scenario_mrtr(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        out["deploy"] = await call(c, pfx(args, "deploy"), {"env": "prod"})
        out["ask_llm"] = await call(c, pfx(args, "ask_llm"), {"q": "meaning of eras?"})
        out["roots"] = await call(c, pfx(args, "list_roots_tool"), {})
        out["era"] = await call(c, pfx(args, "era"), {})
    out["A"] = a.report()


async def scenario_nocaps(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a, caps=False) as c:
        out["deploy"] = await call(c, pfx(args, "deploy"), {"env": "prod"})
        out["ask_llm"] = await call(c, pfx(args, "ask_llm"), {"q": "nobody samples"})
        out["roots"] = await call(c, pfx(args, "list_roots_tool"), {})
    out["A"] = a.report()


async def scenario_legacy_backend(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        out["elicitation"] = await call(c, "trigger-elicitation-request", {})
        out["sampling"] = await call(c, "trigger-sampling-request", {"prompt": "eras sampling prompt", "maxTokens": 42})
        out["roots"] = await call(c, "get-roots-list", {})
    out["A"] = a.report()


async def scenario_listen(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a, b = Peer("A"), Peer("B")
    if args.mode == "legacy":
        async with connect(args, a) as ca, connect(args, b) as cb:
            out["enable"] = await call(cb, pfx(args, "enable_extra"), {})
            with anyio.move_on_after(10):
                await a.list_changed_event.wait()
            listed = await bounded(ca.list_tools(), "A: tools/list")
            out["tools_after"] = [t.name for t in listed.tools]
        out["A"] = a.report()
        return
    events: list[str] = []
    async with connect(args, a) as ca, connect(args, b) as cb:
        async with ca.listen(tools_list_changed=True, resource_subscriptions=["note://todo"]) as sub:
            honored = sub.honored
            out["honored"] = honored.model_dump(mode="json", by_alias=True, exclude_none=True) if honored else None

            async def next_event(what: str) -> None:
                try:
                    with anyio.fail_after(10):
                        ev = await anext(sub)
                    events.append(repr(ev))
                except TimeoutError:
                    events.append(f"timeout waiting for {what}")
                except StopAsyncIteration:
                    events.append(f"the listen ended before {what}")

            out["enable"] = await call(cb, pfx(args, "enable_extra"), {})
            await next_event("ToolsListChanged")
            out["update"] = await call(cb, pfx(args, "update_note"), {"text": "buy eggs"})
            await next_event("ResourceUpdated")
        out["events"] = events
        listed = await bounded(ca.list_tools(), "A: tools/list")
        out["tools_after"] = [t.name for t in listed.tools]
        r = await bounded(ca.read_resource("note://todo"), "A: resources/read")
        out["note_after"] = getattr(r.contents[0], "text", None)
    out["A"] = a.report()


async def cancel_at_first_progress(c: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Calls `tool`, cancels the call at its first progress; whether that happened."""
    started = anyio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async def run() -> None:
        try:
            r = await c.call_tool(tool, arguments, progress_callback=on_progress)
            outcome["finished"] = texts(r)
        except MCPError as e:
            outcome["error"] = f"{e.code} {e.message}"

    with anyio.move_on_after(STEP_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            with anyio.move_on_after(10):
                await started.wait()
            outcome["progress_seen"] = started.is_set()
            tg.cancel_scope.cancel()
    outcome["cancelled"] = "finished" not in outcome and "error" not in outcome
    return outcome


async def poll(c: Client, tool: str, until: Any, seconds: float = 10.0) -> dict[str, Any]:
    """Calls `tool` every 100 ms until `until(text)` holds (bounded); the last answer."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        last = await call(c, tool, {})
        if not last["is_error"] and until(last["text"]):
            last["held"] = True
            return last
        await anyio.sleep(0.1)
    last["held"] = False
    return last


async def scenario_cancel(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    async with connect(args, a) as c:
        before = await call(c, pfx(args, "was_cancelled"), {})
        if before["is_error"]:
            raise CheckFailed(f"was_cancelled failed: {before}")
        n = json.loads(before["text"]).get("cancelled", 0)
        out["slow"] = await cancel_at_first_progress(c, pfx(args, "slow"), {"seconds": 10})
        out["report"] = await poll(c, pfx(args, "was_cancelled"), lambda t: json.loads(t).get("cancelled", 0) > n)
        if args.demo:
            before = await call(c, "demo__cancellations", {})
            out["demo_before"] = before
            out["demo_slow"] = await cancel_at_first_progress(c, "demo__slow", {"steps": 100, "interval_ms": 100})
            out["demo_report"] = await poll(c, "demo__cancellations", lambda t: t != before.get("text"))


async def scenario_logs(args: argparse.Namespace, out: dict[str, Any]) -> None:
    peers = {"A": (Peer("A"), "info"), "B": (Peer("B"), "info"), "C": (Peer("C"), None), "D": (Peer("D"), "error")}
    clients: dict[str, Client] = {}

    async def run(name: str) -> None:
        out[f"{name}_call"] = await call(clients[name], pfx(args, "chatty"), {"tag": f"log-{name}", "n": 4})

    async with (
        connect(args, peers["A"][0], log_level=peers["A"][1]) as clients["A"],
        connect(args, peers["B"][0], log_level=peers["B"][1]) as clients["B"],
        connect(args, peers["C"][0], log_level=peers["C"][1]) as clients["C"],
        connect(args, peers["D"][0], log_level=peers["D"][1]) as clients["D"],
    ):
        if args.concurrent:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "A")
                tg.start_soon(run, "B")
        else:
            await run("A")
            await run("B")
        await run("C")
        await run("D")
        # A message routed to the wrong client would be on its way by now.
        await anyio.sleep(0.3)
    for name, (p, _) in peers.items():
        out[name] = p.report()


async def scenario_trace(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A")
    meta: Any = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE, "baggage": BAGGAGE}
    async with connect(args, a) as c:
        out["call"] = await call(c, pfx(args, "trace"), {}, meta=meta)
        try:
            out["backend_got"] = json.loads(out["call"]["text"])
        except ValueError:
            out["backend_got"] = None
    out["sent"] = meta


async def scenario_never_answers(args: argparse.Namespace, out: dict[str, Any]) -> None:
    a = Peer("A", never_answer=True)
    async with connect(args, a) as c:
        out["deploy"] = await call(c, pfx(args, "deploy"), {"env": "prod"}, timeout=args.call_timeout)
    out["A"] = a.report()


async def scenario_basics(args: argparse.Namespace, out: dict[str, Any]) -> None:
    for name in ("lists", "forward", "mrtr"):
        part: dict[str, Any] = {}
        await RUNNERS[name](args, part)
        out[name] = part


RUNNERS = {name: globals()[f"scenario_{name}"] for name in SCENARIOS}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": args.scenario, "mode": args.mode, "transport": args.transport}
    with anyio.fail_after(args.total_timeout):
        await RUNNERS[args.scenario](args, out)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=("sse", "streamable-http"))
    p.add_argument("--mode", required=True, choices=MODES)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--prefix", default="m__", help="the modern backend's tool prefix ('' directly)")
    p.add_argument("--demo", action="store_true", help="cancel: also the demo backend's slow")
    p.add_argument("--concurrent", action="store_true", help="logs: A and B call at the same time")
    p.add_argument("--call-timeout", type=float, default=STEP_TIMEOUT_S, help="never_answers: the call's bound")
    p.add_argument("--total-timeout", type=float, default=50.0)
    args = p.parse_args()
    if args.transport == "sse" and args.mode != "legacy":
        p.error("--transport sse takes --mode legacy")
    try:
        out = anyio.run(run, args)
    except BaseException as e:  # noqa: BLE001 - report every failure as one line
        leaf = first_leaf(e)
        if isinstance(leaf, TimeoutError):
            msg = f"timed out after {args.total_timeout}s overall"
        elif isinstance(leaf, MCPError):
            msg = f"MCP error {leaf.code}: {leaf.message}"
            if leaf.error.data is not None:
                msg += f" (data: {json.dumps(leaf.error.data, default=str)})"
        else:
            msg = f"{type(leaf).__name__}: {leaf}"
        if not isinstance(leaf, (CheckFailed, MCPError)):
            traceback.print_exception(leaf, file=sys.stderr)
        print(json.dumps({"ok": False, "scenario": args.scenario, "mode": args.mode, "error": msg}))
        print(f"era_client: {args.scenario} ({args.mode} over {args.transport}) FAILED: {msg}", file=sys.stderr)
        return 1
    out["ok"] = True
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
