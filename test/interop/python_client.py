"""A client on the official MCP Python SDK (PyPI `mcp`, 2.x) for toolgate's interop tests.

Connects to an MCP endpoint over Streamable HTTP, lists the tools, calls tools with a progress callback,
cancels a call at its first progress update, answers elicitation requests with a callback, and prints one
JSON summary on stdout. Every step is optional and repeatable:

    python3 test/interop/python_client.py URL [--mode legacy|auto]
        [--progress TOOL JSON_ARGS]... [--cancel TOOL JSON_ARGS]... [--elicit TOOL JSON_ARGS]...
        [--answer TEXT]

`--mode legacy` forces the 2025-11-25 initialize handshake; `auto` (the SDK's default) probes with
server/discover and speaks 2026-07-28 when the server offers it. An elicitation is answered by filling
every field of the requested schema with TEXT. Exit status 0 when every step ran; otherwise the summary's
"error" says what failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib.metadata import version
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.context import ClientRequestContext


def text_of(result: types.CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def run(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    asked: list[str] = []

    async def on_elicit(
        _context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        asked.append(params.message)
        schema = getattr(params, "requested_schema", None) or {}
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        return types.ElicitResult(action="accept", content={key: args.answer for key in properties})

    async with Client(args.url, mode=args.mode, elicitation_callback=on_elicit) as client:
        info = client.server_info
        summary["protocolVersion"] = client.protocol_version
        summary["server"] = info.name if info else None
        summary["tools"] = [tool.name for tool in (await client.list_tools()).tools]

        for name, raw in args.progress:
            updates: list[float] = []

            async def on_progress(progress: float, _total: float | None, _message: str | None) -> None:
                updates.append(progress)

            result = await client.call_tool(name, json.loads(raw), progress_callback=on_progress)
            summary["progress"].append(
                {"tool": name, "text": text_of(result), "isError": bool(result.is_error), "updates": updates}
            )

        for name, raw in args.cancel:
            # The call runs as its own task; the first progress update cancels that task, which makes
            # the SDK send notifications/cancelled for the request.
            first = asyncio.Event()

            async def on_first(_progress: float, _total: float | None, _message: str | None) -> None:
                first.set()

            call = asyncio.ensure_future(client.call_tool(name, json.loads(raw), progress_callback=on_first))
            waiter = asyncio.ensure_future(first.wait())
            await asyncio.wait([call, waiter], return_when=asyncio.FIRST_COMPLETED)
            outcome = "completed before any progress" if call.done() else "cancelled"
            waiter.cancel()
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                pass
            summary["cancel"].append({"tool": name, "outcome": outcome})

        for name, raw in args.elicit:
            before = len(asked)
            result = await client.call_tool(name, json.loads(raw))
            summary["elicitation"].append({"tool": name, "asked": asked[before:], "text": text_of(result)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["legacy", "auto"], default="auto")
    parser.add_argument("--progress", nargs=2, action="append", default=[], metavar=("TOOL", "JSON_ARGS"))
    parser.add_argument("--cancel", nargs=2, action="append", default=[], metavar=("TOOL", "JSON_ARGS"))
    parser.add_argument("--elicit", nargs=2, action="append", default=[], metavar=("TOOL", "JSON_ARGS"))
    parser.add_argument("--answer", default="Ada")
    args = parser.parse_args()
    summary: dict[str, Any] = {
        "sdk": f"mcp {version('mcp')}",
        "mode": args.mode,
        "progress": [],
        "cancel": [],
        "elicitation": [],
    }
    try:
        asyncio.run(run(args, summary))
    except BaseException as error:  # noqa: BLE001 - the summary names any failure, then the exit status says it
        summary["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(summary))
    sys.stdout.flush()
    return 1 if "error" in summary else 0


if __name__ == "__main__":
    sys.exit(main())
