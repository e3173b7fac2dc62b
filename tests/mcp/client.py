"""An MCP client that toolgate does not contain (the official Python SDK, `mcp` from PyPI) driving
toolgate over one transport, for tests/tests/daemon_mcp.rs.

Usage: client.py (http URL | stdio TOOLGATE_BINARY DAEMON_URL) SCENARIO [JOB_ID SCAN_ID]

SCENARIO is `main` (initialize, list tools, call terrascan and prowler, a refused call, read the
job resource), `cancel` (call terrascan, which is a slow tool there, and cancel the request once
it runs), `call` (call terrascan once, start a scan of `terraform`) or `read_job JOB_ID SCAN_ID`
(read the job and the scan as resources and with `get_job` and `get_scan`). With TOOLGATE_KEY in its environment the client sends that access key: over HTTP as
its bearer credential, over stdio by handing it to `toolgate mcp`, as an agent host's
configuration would. The script only observes: it prints one JSON object of what it saw on
stdout, and the Rust test judges it. It reads and writes nothing but its standard streams.
"""

import json
import os
import sys
from contextlib import asynccontextmanager

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@asynccontextmanager
async def connect(argv):
    key = os.environ.get("TOOLGATE_KEY")
    if argv[0] == "http":
        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(argv[1], http_client=http) as (read, write):
                yield read, write, argv[2:]
    elif argv[0] == "stdio":
        environment = get_default_environment()
        if key:
            environment["TOOLGATE_KEY"] = key
        params = StdioServerParameters(
            command=argv[1], args=["mcp", "--url", argv[2]], env=environment
        )
        async with stdio_client(params) as (read, write):
            yield read, write, argv[3:]
    else:
        raise SystemExit(f"unknown transport {argv[0]!r}")


def text_of(result):
    return "\n".join(block.text for block in result.content if getattr(block, "text", None))


def result_json(result):
    return {
        "is_error": bool(result.is_error),
        "text": text_of(result),
        "structured": result.structured_content,
    }


async def main_scenario(session, seen):
    tools = await session.list_tools()
    seen["tools"] = {
        tool.name: {
            "description": tool.description,
            "input_schema": tool.input_schema,
            "output_schema": tool.output_schema,
        }
        for tool in tools.tools
    }
    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "total": total, "message": message})

    terrascan = await session.call_tool(
        "terrascan", {"iac_dir": "terraform"}, progress_callback=on_progress
    )
    seen["terrascan"] = result_json(terrascan)
    seen["progress"] = progress
    prowler = await session.call_tool("prowler", {"provider": "aws"})
    seen["prowler"] = result_json(prowler)
    refused = await session.call_tool("terrascan", {"iac_dir": "/etc"})
    seen["refused"] = result_json(refused)
    job_id = (terrascan.structured_content or {}).get("job_id")
    if job_id:
        resource = await session.read_resource(f"toolgate://jobs/{job_id}")
        seen["resource"] = json.loads(resource.contents[0].text)
    templates = await session.list_resource_templates()
    seen["templates"] = [t.uri_template for t in templates.resource_templates]


async def cancel_scenario(session, seen):
    running = anyio.Event()
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)
        if message and message.startswith("running"):
            running.set()

    async with anyio.create_task_group() as group:

        async def call():
            await session.call_tool(
                "terrascan", {"iac_dir": "terraform"}, progress_callback=on_progress
            )
            seen["completed"] = True

        group.start_soon(call)
        with anyio.fail_after(30):
            await running.wait()
        group.cancel_scope.cancel()
    seen["progress"] = progress
    seen["cancelled"] = True
    # Give the relay and the daemon a moment to deliver the cancellation before the session ends.
    await anyio.sleep(1.0)


async def call_scenario(session, seen):
    terrascan = await session.call_tool("terrascan", {"iac_dir": "terraform"})
    seen["terrascan"] = result_json(terrascan)
    scan = await session.call_tool("start_scan", {"directory": "terraform", "template_type": "tf"})
    seen["scan"] = result_json(scan)


async def read_resource(session, seen, key, uri):
    try:
        resource = await session.read_resource(uri)
        seen[key] = json.loads(resource.contents[0].text)
    except Exception as error:  # the SDK raises the server's JSON-RPC error
        seen[key + "_error"] = str(error)


async def read_job_scenario(session, seen, job_id, scan_id):
    await read_resource(session, seen, "resource", f"toolgate://jobs/{job_id}")
    seen["get_job"] = result_json(await session.call_tool("get_job", {"id": job_id}))
    await read_resource(session, seen, "scan_resource", f"toolgate://scans/{scan_id}")
    seen["get_scan"] = result_json(await session.call_tool("get_scan", {"id": scan_id}))


async def run(argv):
    seen = {}
    async with connect(argv) as (read, write, rest):
        scenario = rest[0]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            seen["server"] = init.server_info.name
            seen["protocol_version"] = init.protocol_version
            if scenario == "main":
                await main_scenario(session, seen)
            elif scenario == "cancel":
                await cancel_scenario(session, seen)
            elif scenario == "call":
                await call_scenario(session, seen)
            elif scenario == "read_job":
                await read_job_scenario(session, seen, rest[1], rest[2])
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(run, sys.argv[1:])
