"""An MCP client this project did not write (the official Python SDK, PyPI `mcp`) against
Steward. Lists the tools, calls a read tool, a write that needs a person, and a tool the
client's entity does not list; prints one JSON object for the Rust test to check.

    client.py stdio SERVICE STEWARD_BINARY [ARGS...]   (the environment is passed on)
    client.py http SERVICE URL TOKEN
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def exercise(session: ClientSession, service: str) -> dict:
    init = await session.initialize()
    listed = await session.list_tools()
    out = {
        "server": init.server_info.name,
        "tools": {
            t.name: {
                "read_only": t.annotations.read_only_hint if t.annotations else None,
                "destructive": t.annotations.destructive_hint if t.annotations else None,
                "required": (t.input_schema or {}).get("required", []),
            }
            for t in listed.tools
        },
        "calls": {},
    }
    calls = [
        ("service_status", {"service": service}),
        ("service_restart", {"service": service}),
        ("service_deploy", {"service": service, "image": "steward-demo:v2"}),
        ("service_status", {"service": "Not A Name!"}),
    ]
    for i, (name, args) in enumerate(calls):
        r = await session.call_tool(name, args)
        text = "".join(getattr(c, "text", "") for c in r.content)
        out["calls"][f"{i}:{name}"] = {"is_error": bool(r.is_error), "body": json.loads(text)}
    return out


async def main() -> None:
    mode, service = sys.argv[1], sys.argv[2]
    if mode == "stdio":
        params = StdioServerParameters(command=sys.argv[3], args=sys.argv[4:], env=dict(os.environ))
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                out = await exercise(session, service)
    else:
        url, token = sys.argv[3], sys.argv[4]
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    out = await exercise(session, service)
    print(json.dumps(out))


asyncio.run(main())
