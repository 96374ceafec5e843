#!/usr/bin/env python3
"""Clients of the official Python MCP SDK (PyPI `mcp`) through a load
balancer in front of several gateways, one of which is killed under them.

    python lb_client.py --url http://127.0.0.1:PORT --sessions 8
                        --victim gw_a --victim-pid PID [--warmup-s 3]
                        [--after-s 2] [--max-failover-s 20]

Run by scripts/lb-test.sh. The gateways run with `server.instance_id`
(gw_a, gw_b, ...), so a session id names the instance that made it: that
is how the load balancer routes a session, and how this script tells which
instance each client is on.

1. `--sessions` clients per transport (Streamable HTTP on /mcp, legacy
   HTTP+SSE on /sse) initialize through the balancer and call `echo` in a
   loop, each answer checked to be its own message.
2. When every client has made calls and `--warmup-s` has passed, the
   instance `--victim` is killed (SIGKILL to `--victim-pid`).
3. Its clients see what a real client sees: a Streamable HTTP request gets
   404 (the balancer sends it to another instance, which does not know the
   session); an SSE stream is closed. Like a user's client, they then start
   a new session (the SDK does not re-initialize by itself), land on an
   instance still alive and go on calling. The others must not notice.
4. The run goes on until every client of the victim has made a call on a
   new session (at most `--max-failover-s`), then `--after-s` more.

Prints one JSON object: sessions per transport and instance, calls ok and
failed (before and after the kill), what the victim's clients saw, and the
failover time (from the kill to each re-initialized client's first
successful call). Exit 0 when every check held, else 1 with `errors`.
Every await is bounded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

CALL_TIMEOUT_S = 10.0
"""Bound on one initialize or call; a gateway that stops answering fails it."""
TLS = ssl.create_default_context()
"""httpx2's default verification, built once."""
CONNECTION_CLOSED = -32000
"""The SDK's code for a request whose connection (the SSE stream) ended."""


@dataclass
class Client:
    transport: str  # "streamable" or "sse"
    index: int
    session_id: str | None = None
    sessions: list[str] = field(default_factory=list)  # every session id, in order
    ok: int = 0
    failed: int = 0
    ok_after_kill: int = 0
    failed_after_kill: int = 0
    statuses_404: int = 0  # HTTP 404 answers seen (Streamable HTTP)
    closed: int = 0  # SSE streams that the server's side ended
    reinits: int = 0
    init_failures: int = 0
    on_victim: bool = False  # its session was on the victim at the kill
    recovered_at: float | None = None  # first ok call on a new session after the kill
    errors: list[str] = field(default_factory=list)

    @property
    def instance(self) -> str:
        return instance_of(self.session_id)


class WatchedStream(httpx2.AsyncByteStream):
    """A response body that reports its end (the server closed it, or the
    connection broke), but not a close of our own (cancellation)."""

    def __init__(self, inner: Any, on_end: Any) -> None:
        self.inner = inner
        self.on_end = on_end

    async def __aiter__(self) -> Any:
        try:
            async for chunk in self.inner:
                yield chunk
        except (anyio.get_cancelled_exc_class(), GeneratorExit):
            raise
        except Exception:
            self.on_end()
            raise
        self.on_end()

    async def aclose(self) -> None:
        await self.inner.aclose()


def instance_of(session_id: str | None) -> str:
    """`gw_a` from `gw_a-<hex>`; "?" without a prefix."""
    if not session_id or "-" not in session_id:
        return "?"
    return session_id.split("-", 1)[0]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clients = [Client(t, i) for t in ("streamable", "sse") for i in range(args.sessions)]
        self.kill_at: float | None = None
        self.stop = anyio.Event()
        self.at_kill: dict[str, dict[str, int]] = {}

    def note(self, c: Client, what: str) -> None:
        if len(c.errors) < 5:
            c.errors.append(what[:300])

    # -- one client -------------------------------------------------------

    async def client(self, c: Client) -> None:
        while not self.stop.is_set():
            try:
                if c.transport == "streamable":
                    await self.streamable_session(c)
                else:
                    await self.sse_session(c)
            except Exception as e:  # noqa: BLE001 - every failure is counted and retried
                self.note(c, f"session ended: {leaf(e)!r}")
            if not self.stop.is_set():
                # A new session, as a user's client would after 404 or a
                # closed stream; a short pause so that a failure loop
                # cannot spin.
                c.reinits += 1
                await anyio.sleep(0.05)

    def http_client(self, c: Client, state: dict[str, Any], **kw: Any) -> httpx2.AsyncClient:
        """An HTTP client as the SDK makes it (`create_mcp_http_client`: its
        timeouts, headers, auth), with hooks that record what the transport
        shows: 404 answers, the session id of an `initialize` answer, the end
        of the session's SSE stream. One TLS context is shared by all (built
        per client it costs 0.2 s of CPU, which would count as failover)."""

        async def on_response(response: httpx2.Response) -> None:
            method = response.request.method
            if response.status_code == 404 and method != "DELETE":
                c.statuses_404 += 1
            if sid := response.headers.get("mcp-session-id"):
                state.setdefault("sid", sid)
            if method == "GET" and response.request.url.path == "/sse" and response.status_code == 200:
                response.stream = WatchedStream(response.stream, lambda: self.stream_ended(c, state))

        kw.setdefault("timeout", httpx2.Timeout(30.0, read=300.0))
        client = httpx2.AsyncClient(verify=TLS, **{k: v for k, v in kw.items() if v is not None})
        client.event_hooks["response"].append(on_response)
        return client

    def stream_ended(self, c: Client, state: dict[str, Any]) -> None:
        if not self.stop.is_set() and not state.get("leaving"):
            state["closed"] = True
            c.closed += 1

    async def streamable_session(self, c: Client) -> None:
        state: dict[str, Any] = {}
        http = self.http_client(c, state)
        async with http, streamable_http_client(self.args.url + "/mcp", http_client=http) as (read, write):
            await self.use_session(c, read, write, state)

    async def sse_session(self, c: Client) -> None:
        state: dict[str, Any] = {}

        def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
            return self.http_client(c, state, headers=headers, timeout=timeout, auth=auth)

        async with sse_client(
            self.args.url + "/sse",
            timeout=CALL_TIMEOUT_S,
            sse_read_timeout=60,
            httpx_client_factory=factory,
            on_session_created=lambda sid: state.__setitem__("sid", sid),
        ) as (read, write):
            await self.use_session(c, read, write, state)

    async def use_session(self, c: Client, read: Any, write: Any, state: dict[str, Any]) -> None:
        async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S) as session:
            try:
                with anyio.fail_after(CALL_TIMEOUT_S):
                    await session.initialize()
            except Exception:
                c.init_failures += 1
                raise
            sid = state.get("sid")
            if not sid:
                raise RuntimeError("no session id after initialize")
            c.session_id = sid
            c.sessions.append(sid)
            n = 0
            while not self.stop.is_set():
                n += 1
                msg = f"{c.transport}-{c.index}-{len(c.sessions)}-{n}"
                seen_404, killed = c.statuses_404, self.kill_at is not None
                try:
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        result = await session.call_tool("echo", {"message": msg})
                    text = "".join(getattr(x, "text", "") for x in result.content)
                    if result.is_error or text != msg:
                        raise RuntimeError(f"echo of {msg!r} answered {text!r} (isError {result.is_error})")
                except Exception as e:  # noqa: BLE001
                    after = killed or self.kill_at is not None
                    c.failed += 1
                    c.failed_after_kill += after
                    err = leaf(e)
                    self.note(c, f"call on {sid}: {err!r}")
                    closed = isinstance(err, MCPError) and err.error.code == CONNECTION_CLOSED
                    if c.statuses_404 > seen_404 or state.get("closed") or closed:
                        # 404, or the SSE stream (and with it the session)
                        # ended: start a new session.
                        state["leaving"] = True
                        return
                    await anyio.sleep(0.05)
                    continue
                c.ok += 1
                if self.kill_at is not None:
                    c.ok_after_kill += 1
                    if c.on_victim and c.recovered_at is None and len(c.sessions) > 1:
                        c.recovered_at = time.monotonic()
                await anyio.sleep(0.01)

    # -- the run ----------------------------------------------------------

    def by_instance(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in self.clients:
            d = out.setdefault(c.instance, {"streamable": 0, "sse": 0})
            d[c.transport] += 1
        return out

    async def wait_until(self, cond: Any, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            while not cond():
                await anyio.sleep(0.02)
            return True
        return False

    async def main(self) -> dict[str, Any]:
        a = self.args
        errors: list[str] = []
        out: dict[str, Any] = {"sessions_per_transport": a.sessions, "victim": a.victim}
        async with anyio.create_task_group() as tg:
            for c in self.clients:
                tg.start_soon(self.client, c)
            started = time.monotonic()
            warm = await self.wait_until(lambda: all(c.ok >= 3 for c in self.clients), a.warmup_deadline_s)
            out["warmup_s"] = round(time.monotonic() - started, 2)
            if not warm:
                errors.append(f"not every client made 3 calls within {a.warmup_deadline_s} s")
            await anyio.sleep(max(0.0, a.warmup_s - (time.monotonic() - started)))
            self.at_kill = self.by_instance()
            out["before_kill"] = {
                "sessions_by_instance": self.at_kill,
                "calls_ok": sum(c.ok for c in self.clients),
                "calls_failed": sum(c.failed for c in self.clients),
            }
            victims = [c for c in self.clients if c.instance == a.victim]
            for c in victims:
                c.on_victim = True
            for t in ("streamable", "sse"):
                if not any(c.transport == t for c in victims):
                    errors.append(f"no {t} client was on {a.victim} (sessions by instance: {self.at_kill})")
            if warm and victims:
                self.kill_at = time.monotonic()
                os.kill(a.victim_pid, signal.SIGKILL)
                recovered = await self.wait_until(
                    lambda: all(c.recovered_at is not None for c in victims), a.max_failover_s
                )
                if not recovered:
                    errors.append(
                        f"{sum(c.recovered_at is None for c in victims)} of {len(victims)} clients of "
                        f"{a.victim} did not make a call on a new session within {a.max_failover_s} s"
                    )
                await anyio.sleep(a.after_s)
            self.stop.set()
            tg.cancel_scope.deadline = anyio.current_time() + 15
        return self.report(out, errors)

    def report(self, out: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        a = self.args
        victims = [c for c in self.clients if c.on_victim]
        others = [c for c in self.clients if not c.on_victim]
        times = sorted(c.recovered_at - self.kill_at for c in victims if c.recovered_at and self.kill_at)
        out["calls_ok"] = sum(c.ok for c in self.clients)
        out["calls_failed"] = sum(c.failed for c in self.clients)
        out["initializations"] = sum(len(c.sessions) for c in self.clients)
        out["after_kill"] = {
            "sessions_by_instance": self.by_instance(),
            "calls_ok": sum(c.ok_after_kill for c in self.clients),
            "calls_failed": sum(c.failed_after_kill for c in self.clients),
        }
        out["victim_clients"] = {
            t: {
                "clients": sum(c.transport == t for c in victims),
                "saw_404": sum(c.transport == t and c.statuses_404 > 0 for c in victims),
                "saw_stream_closed": sum(c.transport == t and c.closed > 0 for c in victims),
                "reinitialized": sum(c.transport == t and len(c.sessions) > 1 for c in victims),
                "now_on": sorted({c.instance for c in victims if c.transport == t}),
                "calls_failed": sum(c.failed_after_kill for c in victims if c.transport == t),
            }
            for t in ("streamable", "sse")
        }
        out["other_clients"] = {
            "clients": len(others),
            "calls_failed_after_kill": sum(c.failed_after_kill for c in others),
            "reinitialized": sum(len(c.sessions) > 1 for c in others),
        }
        out["failover_s"] = {
            "first": round(times[0], 3) if times else None,
            "p50": round(statistics.median(times), 3) if times else None,
            "max": round(times[-1], 3) if times else None,
        }
        if self.kill_at is not None:
            for c in victims:
                where = f"{c.transport} client {c.index}"
                if c.transport == "streamable" and c.statuses_404 == 0:
                    errors.append(f"{where} of {a.victim} never got a 404")
                if c.transport == "sse" and c.closed == 0:
                    errors.append(f"{where} of {a.victim} never saw its stream close")
                if c.instance == a.victim:
                    errors.append(f"{where} is still on {a.victim}")
                if c.ok_after_kill == 0:
                    errors.append(f"{where} made no call after the kill")
            for c in others:
                if c.failed_after_kill or len(c.sessions) > 1:
                    errors.append(
                        f"{c.transport} client {c.index} on {c.instance} was disturbed by the kill: "
                        f"{c.failed_after_kill} calls failed, {len(c.sessions)} sessions; {c.errors}"
                    )
            if out["before_kill"]["calls_failed"]:
                errors.append(f"{out['before_kill']['calls_failed']} calls failed before the kill")
        out["error_samples"] = [e for c in self.clients for e in c.errors][:10]
        out["ok"] = not errors
        out["errors"] = errors
        return out


def leaf(exc: BaseException) -> BaseException:
    """anyio wraps task failures in ExceptionGroups; the first real one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the load balancer, http://127.0.0.1:PORT")
    p.add_argument("--sessions", type=int, default=8, help="clients per transport")
    p.add_argument("--victim", required=True, help="instance_id of the instance to kill")
    p.add_argument("--victim-pid", type=int, required=True)
    p.add_argument("--warmup-s", type=float, default=3.0)
    p.add_argument("--warmup-deadline-s", type=float, default=30.0)
    p.add_argument("--max-failover-s", type=float, default=20.0)
    p.add_argument("--after-s", type=float, default=2.0)
    args = p.parse_args()
    # The SDK logs each broken stream and refused POST with a traceback;
    # what matters here is counted in the report.
    logging.basicConfig(level=logging.CRITICAL)
    limit = args.warmup_deadline_s + args.warmup_s + args.max_failover_s + args.after_s + 30

    async def bounded_run() -> dict[str, Any]:
        with anyio.fail_after(limit):
            return await Run(args).main()

    try:
        out = anyio.run(bounded_run)
    except Exception as e:  # noqa: BLE001
        out = {"ok": False, "errors": [f"the driver failed: {leaf(e)!r}"]}
    print(json.dumps(out))
    return 0 if out.get("ok") else 1

if __name__ == "__main__":
    sys.exit(main())
