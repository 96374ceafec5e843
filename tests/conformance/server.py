#!/usr/bin/env python3
"""The conformance backend: an MCP server, written with the official Python SDK
(PyPI `mcp`, pinned in scripts/install-peers.sh), that implements every server
scenario of the official conformance suite (npm `@modelcontextprotocol/conformance`,
same script): its `test_*` tools, resources, resource template, prompts,
completions, logging, subscriptions, and the sampling and elicitation requests
it sends its client during tool calls.

    python server.py --stdio        serve one client on stdin/stdout (as a gateway backend)
    python server.py --http PORT    serve Streamable HTTP on http://127.0.0.1:PORT/mcp
                                    (PORT 0 picks a free port)

With --http it prints `conformance server: listening on http://127.0.0.1:PORT/mcp`
to stderr once the socket accepts connections; tests/conformance.rs waits for
that line. Every log line goes to stderr; with --stdio, stdout is the wire.

Each handler below names the suite scenario(s) it serves. What a scenario sends
and checks is in the suite's sources, src/scenarios/server/*.ts at the pinned
tag (github.com/modelcontextprotocol/conformance); the payloads here are the
ones those files describe. Results are plain dicts so that what goes on the
wire reads as it does in the scenario descriptions (the SDK still validates
them against the protocol types before sending).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import warnings
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

# Logging, sampling and the logging/setLevel handler are deprecated as of
# protocol 2026-07-28; this server implements them on purpose (the suite tests
# 2025-06-18 and 2025-11-25), so the SDK's deprecation warnings are noise.
warnings.simplefilter("ignore", MCPDeprecationWarning)

SERVER_NAME = "mcp-sentinel-conformance-backend"

# A 1x1 red PNG and a minimal WAV, as in the suite's reference servers.
TEST_IMAGE_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TEST_AUDIO_BASE64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image() -> dict[str, Any]:
    return {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"}


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------

# json-schema-2020-12: the listing must keep $schema, $defs and
# additionalProperties exactly as written here (SEP-1613).
JSON_SCHEMA_2020_12_INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}

# tools-list: every tool has a name, a description and an inputSchema.
TOOLS: list[dict[str, Any]] = [
    {"name": "test_simple_text", "description": "Returns simple text content", "inputSchema": NO_ARGS},
    {"name": "test_image_content", "description": "Returns image content", "inputSchema": NO_ARGS},
    {"name": "test_audio_content", "description": "Returns audio content", "inputSchema": NO_ARGS},
    {"name": "test_embedded_resource", "description": "Returns an embedded resource", "inputSchema": NO_ARGS},
    {
        "name": "test_multiple_content_types",
        "description": "Returns text, image and resource content",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_tool_with_logging",
        "description": "Sends three log messages while it runs",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_tool_with_progress",
        "description": "Reports progress 0, 50 and 100 of 100",
        "inputSchema": NO_ARGS,
    },
    {"name": "test_error_handling", "description": "Always fails with a tool error", "inputSchema": NO_ARGS},
    {
        "name": "test_sampling",
        "description": "Asks the client for an LLM completion (sampling/createMessage)",
        "inputSchema": {
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
            "required": ["prompt"],
        },
    },
    {
        "name": "test_elicitation",
        "description": "Asks the client for user input (elicitation/create)",
        "inputSchema": {
            "type": "object",
            "properties": {"message": {"type": "string", "description": "The message to show the user"}},
            "required": ["message"],
        },
    },
    {
        "name": "test_elicitation_sep1034_defaults",
        "description": "Elicitation whose schema has a default for every primitive type (SEP-1034)",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_elicitation_sep1330_enums",
        "description": "Elicitation with the five enum schema variants (SEP-1330)",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_reconnection",
        "description": "Closes its SSE response stream mid-call; the result follows on reconnection (SEP-1699)",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "json_schema_2020_12_tool",
        "description": "Tool with JSON Schema 2020-12 features",
        "inputSchema": JSON_SCHEMA_2020_12_INPUT_SCHEMA,
    },
]

# tools-call-elicitation: the form the scenario's description asks for.
ELICITATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

# elicitation-sep1034-defaults: a default for each primitive type.
SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

# elicitation-sep1330-enums: the five enum variants, one property each.
SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}

LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

# logging-set-level: the lowest level sent. Process-wide, not per session: over
# stdio there is one client, and over HTTP the suite runs one scenario at a time.
min_log_level = "debug"


async def log(ctx: ServerRequestContext, level: str, message: str) -> None:
    """A notifications/message tied to the current request (so over HTTP it rides
    that request's SSE stream), unless the client asked for less."""
    if LOG_LEVELS.index(level) < LOG_LEVELS.index(min_log_level):
        return
    await ctx.session.send_log_message(
        level, message, logger="conformance-backend", related_request_id=ctx.request_id
    )


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> dict[str, Any]:
    # tools-list, json-schema-2020-12
    return {"tools": TOOLS}


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> dict[str, Any]:
    name = params.name
    args = params.arguments or {}

    if name == "test_simple_text":  # tools-call-simple-text
        return {"content": [text("This is a simple text response for testing.")]}

    if name == "test_image_content":  # tools-call-image
        return {"content": [image()]}

    if name == "test_audio_content":  # tools-call-audio
        return {"content": [{"type": "audio", "data": TEST_AUDIO_BASE64, "mimeType": "audio/wav"}]}

    if name == "test_embedded_resource":  # tools-call-embedded-resource
        resource = {
            "uri": "test://embedded-resource",
            "mimeType": "text/plain",
            "text": "This is an embedded resource content.",
        }
        return {"content": [{"type": "resource", "resource": resource}]}

    if name == "test_multiple_content_types":  # tools-call-mixed-content
        resource = {
            "uri": "test://mixed-content-resource",
            "mimeType": "application/json",
            "text": json.dumps({"test": "data", "value": 123}),
        }
        return {
            "content": [
                text("Multiple content types test:"),
                image(),
                {"type": "resource", "resource": resource},
            ]
        }

    if name == "test_tool_with_logging":  # tools-call-with-logging: 3 info logs, ~50 ms apart
        await log(ctx, "info", "Tool execution started")
        await anyio.sleep(0.05)
        await log(ctx, "info", "Tool processing data")
        await anyio.sleep(0.05)
        await log(ctx, "info", "Tool execution completed")
        return {"content": [text("Tool with logging executed successfully")]}

    if name == "test_tool_with_progress":  # tools-call-with-progress: 0, 50, 100 of 100, ~50 ms apart
        # report_progress uses the request's own progressToken, and sends
        # nothing when the request has none.
        for step in (0, 50, 100):
            await ctx.session.report_progress(step, 100, f"Completed step {step} of 100")
            if step < 100:
                await anyio.sleep(0.05)
        token = ctx.meta.get("progress_token") if ctx.meta else None
        return {"content": [text(str(token if token is not None else 0))]}

    if name == "test_error_handling":  # tools-call-error: a tool error, not a protocol error
        return {"isError": True, "content": [text("This tool intentionally returns an error for testing")]}

    if name == "test_sampling":  # tools-call-sampling
        prompt = str(args.get("prompt", ""))
        try:
            result = await ctx.session.create_message(
                messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        except MCPError as e:
            return {"isError": True, "content": [text(f"Sampling failed: {e}")]}
        answer = result.content.text if isinstance(result.content, types.TextContent) else "No response"
        return {"content": [text(f"LLM response: {answer}")]}

    if name == "test_elicitation":  # tools-call-elicitation
        return await elicit(ctx, str(args.get("message", "")), ELICITATION_SCHEMA, "User response")

    if name == "test_elicitation_sep1034_defaults":  # elicitation-sep1034-defaults
        message = "Please review and update the form fields with defaults"
        return await elicit(ctx, message, SEP1034_SCHEMA, "Elicitation completed")

    if name == "test_elicitation_sep1330_enums":  # elicitation-sep1330-enums
        message = "Please select options from the enum fields"
        return await elicit(ctx, message, SEP1330_SCHEMA, "Elicitation completed")

    if name == "test_reconnection":  # server-sse-polling (SEP-1699)
        # The SDK offers close_sse_stream only over HTTP, with an event store,
        # to a request made at protocol 2025-11-25 or later; the client then
        # resumes with GET + Last-Event-ID and gets the result replayed.
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await anyio.sleep(0.1)
        return {"content": [text("Reconnection test completed successfully.")]}

    if name == "json_schema_2020_12_tool":  # json-schema-2020-12 (only listed by the scenario)
        return {"content": [text(f"JSON Schema 2020-12 tool called with: {json.dumps(args)}")]}

    raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")


async def elicit(ctx: ServerRequestContext, message: str, schema: dict[str, Any], label: str) -> dict[str, Any]:
    """Sends elicitation/create (form mode) on the current request and reports the answer."""
    try:
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    except MCPError as e:
        return {"isError": True, "content": [text(f"Elicitation failed: {e}")]}
    content = json.dumps(result.content or {})
    return {"content": [text(f"{label}: action={result.action}, content={content}")]}


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------

WATCHED_URI = "test://watched-resource"

# resources-list: direct resources, each with uri, name, description, mimeType.
RESOURCES: list[dict[str, Any]] = [
    {
        "uri": "test://static-text",
        "name": "static-text",
        "title": "Static Text Resource",
        "description": "A static text resource for testing",
        "mimeType": "text/plain",
    },
    {
        "uri": "test://static-binary",
        "name": "static-binary",
        "title": "Static Binary Resource",
        "description": "A static binary resource (image) for testing",
        "mimeType": "image/png",
    },
    {
        "uri": WATCHED_URI,
        "name": "watched-resource",
        "title": "Watched Resource",
        "description": "A resource clients may subscribe to",
        "mimeType": "text/plain",
    },
]

TEMPLATE = "test://template/{id}/data"
TEMPLATE_RE = re.compile(r"^test://template/([^/]+)/data$")

# resources-subscribe, resources-unsubscribe: the URIs clients subscribed to.
subscriptions: set[str] = set()


async def list_resources(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> dict[str, Any]:
    return {"resources": RESOURCES}


async def list_resource_templates(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> dict[str, Any]:
    # resources-templates-read
    template = {
        "uriTemplate": TEMPLATE,
        "name": "template",
        "title": "Resource Template",
        "description": "A resource template with parameter substitution",
        "mimeType": "application/json",
    }
    return {"resourceTemplates": [template]}


async def read_resource(ctx: ServerRequestContext, params: types.ReadResourceRequestParams) -> dict[str, Any]:
    uri = str(params.uri)
    if uri == "test://static-text":  # resources-read-text
        contents = {"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}
    elif uri == "test://static-binary":  # resources-read-binary
        contents = {"uri": uri, "mimeType": "image/png", "blob": TEST_IMAGE_BASE64}
    elif uri == WATCHED_URI:
        contents = {"uri": uri, "mimeType": "text/plain", "text": "Watched resource content"}
    elif match := TEMPLATE_RE.match(uri):  # resources-templates-read: {id} substituted
        rid = match.group(1)
        body = {"id": rid, "templateTest": True, "data": f"Data for ID: {rid}"}
        contents = {"uri": uri, "mimeType": "application/json", "text": json.dumps(body)}
    else:
        # -32002 is "resource not found" up to 2025-11-25.
        raise MCPError(code=-32002, message=f"Resource not found: {uri}", data={"uri": uri})
    return {"contents": [contents]}


async def subscribe(ctx: ServerRequestContext, params: types.SubscribeRequestParams) -> dict[str, Any]:
    # resources-subscribe: accept and remember; {} back.
    subscriptions.add(str(params.uri))
    return {}


async def unsubscribe(ctx: ServerRequestContext, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
    # resources-unsubscribe
    subscriptions.discard(str(params.uri))
    return {}


# ---------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------

# prompts-list: every prompt has a name and a description.
PROMPTS: list[dict[str, Any]] = [
    {"name": "test_simple_prompt", "title": "Simple Test Prompt", "description": "A prompt without arguments"},
    {
        "name": "test_prompt_with_arguments",
        "title": "Prompt With Arguments",
        "description": "A prompt with two required arguments",
        "arguments": [
            {"name": "arg1", "description": "First test argument", "required": True},
            {"name": "arg2", "description": "Second test argument", "required": True},
        ],
    },
    {
        "name": "test_prompt_with_embedded_resource",
        "title": "Prompt With Embedded Resource",
        "description": "A prompt that embeds a resource",
        "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": True}],
    },
    {"name": "test_prompt_with_image", "title": "Prompt With Image", "description": "A prompt with image content"},
]


async def list_prompts(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> dict[str, Any]:
    return {"prompts": PROMPTS}


def user(content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": content}


def required_arg(args: dict[str, str], name: str) -> str:
    if name not in args:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Missing required argument: {name}")
    return args[name]


async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> dict[str, Any]:
    args = params.arguments or {}
    if params.name == "test_simple_prompt":  # prompts-get-simple
        return {"messages": [user(text("This is a simple prompt for testing."))]}
    if params.name == "test_prompt_with_arguments":  # prompts-get-with-args
        arg1, arg2 = required_arg(args, "arg1"), required_arg(args, "arg2")
        return {"messages": [user(text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]}
    if params.name == "test_prompt_with_embedded_resource":  # prompts-get-embedded-resource
        resource = {
            "uri": required_arg(args, "resourceUri"),
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        }
        return {
            "messages": [
                user({"type": "resource", "resource": resource}),
                user(text("Please process the embedded resource above.")),
            ]
        }
    if params.name == "test_prompt_with_image":  # prompts-get-with-image
        return {"messages": [user(image()), user(text("Please analyze the image above."))]}
    raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")


# ---------------------------------------------------------------------------
# Completion, logging
# ---------------------------------------------------------------------------

# completion-complete: candidates per (reference, argument), filtered by prefix.
COMPLETIONS: dict[tuple[str, str], list[str]] = {
    ("test_prompt_with_arguments", "arg1"): ["paris", "park", "party", "test-value-1"],
    ("test_prompt_with_arguments", "arg2"): ["alpha", "beta", "test-value-2"],
    ("test_prompt_with_embedded_resource", "resourceUri"): ["test://static-text", "test://example-resource"],
    (TEMPLATE, "id"): ["1", "2", "3", "123"],
}


async def complete(ctx: ServerRequestContext, params: types.CompleteRequestParams) -> dict[str, Any]:
    ref = params.ref
    key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
    candidates = COMPLETIONS.get((key, params.argument.name), [])
    values = [v for v in candidates if v.startswith(params.argument.value)]
    return {"completion": {"values": values, "total": len(values), "hasMore": False}}


async def set_logging_level(ctx: ServerRequestContext, params: types.SetLevelRequestParams) -> dict[str, Any]:
    # logging-set-level: {} back; later log messages below the level are not sent.
    global min_log_level
    min_log_level = params.level
    return {}


def make_server() -> Server[Any]:
    return Server(
        SERVER_NAME,
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_set_logging_level=set_logging_level,
    )


# ---------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------


class InMemoryEventStore(EventStore):
    """Every event of every stream, so a client that lost an SSE stream can
    resume it with GET + Last-Event-ID (server-sse-polling, SEP-1699). Event
    ids are a process-wide counter; priming events store no message."""

    def __init__(self) -> None:
        self._events: list[tuple[str, int, types.JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        event_id = len(self._events) + 1
        self._events.append((stream_id, event_id, message))
        return str(event_id)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        stream = next((s for s, i, _ in self._events if i == after), None)
        if stream is None:
            return None
        for s, i, message in self._events:
            if s == stream and i > after and message is not None:
                await send_callback(EventMessage(message, str(i)))
        return stream


async def serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options(NotificationOptions()))


async def serve_http(server: Server[Any], port: int) -> None:
    # The SDK turns on its Host/Origin checks (DNS rebinding protection) for a
    # loopback host: dns-rebinding-protection.
    app = server.streamable_http_app(
        host="127.0.0.1",
        event_store=InMemoryEventStore(),
        retry_interval=100,  # ms, sent in each stream's priming event
    )
    # Bind and listen before announcing the port, so a client that reads the
    # line can connect at once (port 0 included).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    print(f"conformance server: listening on http://127.0.0.1:{bound}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve one client on stdin/stdout")
    mode.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT/mcp")
    args = parser.parse_args()
    server = make_server()
    if args.stdio:
        anyio.run(serve_stdio, server)
    else:
        if not 0 <= args.http <= 65535:
            parser.error(f"--http: port {args.http} is out of range")
        asyncio.run(serve_http(server, args.http))
    return 0


if __name__ == "__main__":
    sys.exit(main())
