"""`council up | gateway | orchestrator | runner | ask | watch | chat | mcp` — the command line."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from council.common.settings import REQUIRE_AUTH_ENV, ConfigError, Settings, load_settings

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8000"


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"council: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def service_command(*args: str) -> list[str]:
    """The command that runs this installed council in a child process, whatever its cwd holds.

    ``-P`` keeps the cwd off ``sys.path``: a user's own ``council``, ``services`` or ``schemas``
    package in the folder ``council up`` runs from must never shadow ours.
    """
    return [sys.executable, "-P", "-m", "council.cli", *args]


# ---- services -------------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _multiprocess_metrics(workers: int) -> Path | None:
    """With several workers, a folder their metrics share (``PROMETHEUS_MULTIPROC_DIR``, emptied
    first); the one made here, to remove afterwards, or None."""
    from council.common.metrics import MULTIPROCESS_ENV, clear_multiprocess_dir

    if given := os.environ.get(MULTIPROCESS_ENV):
        clear_multiprocess_dir(Path(given))
        return None
    if workers <= 1:
        return None
    made = Path(tempfile.mkdtemp(prefix="council-gateway-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(made)  # the workers uvicorn spawns inherit it
    return made


def cmd_gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from council.bootstrap import configure_logging, count_keys, run

    configure_logging()
    settings = _settings()  # fail fast, with the field named, before uvicorn starts workers
    if not _loopback(args.host) and not args.insecure_no_auth:
        if not run(count_keys(settings)):
            print(
                f"council: refusing to listen on {args.host} with no API keys: anyone who can reach it could "
                "start paid councils and read every one. Create a key first (council keys create --tenant NAME) "
                "or pass --insecure-no-auth.",
                file=sys.stderr,
            )
            return 2
        os.environ[REQUIRE_AUTH_ENV] = "1"  # for every worker: no request without a key, whatever happens to the keys
    from uvicorn.config import LOGGING_CONFIG

    from council.common.logs import json_logs

    made = _multiprocess_metrics(args.workers)
    try:
        uvicorn.run(
            "council.gateway.asgi:app_factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            # JSON lines: uvicorn's own records go to our handler too, rather than its text formatter.
            log_config=None if json_logs() else LOGGING_CONFIG,
            timeout_graceful_shutdown=5,
            http="council.gateway.protocol:ProblemHttpProtocol",  # its own 400s as problem+json too
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from council.bootstrap import configure_logging, manage_keys, run

    configure_logging("WARNING")
    try:
        output = run(manage_keys(_settings(), args.keys_command, vars(args)))
    except ValueError as exc:  # what the key store said cannot be done
        print(f"council: {exc}", file=sys.stderr)
        return 1
    print("\n".join(output))
    return 0


def cmd_orchestrator(args: argparse.Namespace) -> int:
    from council.bootstrap import configure_logging, run, run_orchestrator

    configure_logging()
    run(run_orchestrator(_settings()))
    return 0


def cmd_runner(args: argparse.Namespace) -> int:
    from council.bootstrap import configure_logging, run, run_runner

    configure_logging()
    pools = [p for p in args.pools.split(",") if p] if args.pools else None
    run(run_runner(_settings(), pools, args.max_in_flight))
    return 0


def _wait_healthy(
    url: str, procs: list[subprocess.Popen[bytes]], stopped: Callable[[], bool], timeout: float = 60.0
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopped():
        if any(p.poll() is not None for p in procs):
            return False
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def default_runners() -> int:
    """One runner per core, up to 4: a runner is one process on one core, and CPU is its limit."""
    return max(1, min(4, os.cpu_count() or 1))


def _auth_state(url: str) -> str:
    """What the running gateway says about auth: whether a request without a key gets in."""
    try:
        status = httpx.get(f"{url}/api/config", timeout=5).status_code
    except httpx.HTTPError:
        return "unknown (the gateway did not answer)"
    if status == 401:
        return "on: send an API key (Authorization: Bearer <key>)"
    return "off (no API keys exist; `council keys create --tenant NAME` turns it on)"


def cmd_up(args: argparse.Namespace) -> int:
    from council.common.embedded import EmbeddedNats, StoreInUse, exit_with_parent

    settings = _settings()
    env = dict(os.environ)
    url = f"http://{args.host}:{args.port}"
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        signal.signal(sig, on_signal)
    nats: EmbeddedNats | None = None
    procs: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        if not env.get("NATS_URL"):
            try:
                nats = EmbeddedNats(Path(args.data_dir).resolve() / "nats", port=args.nats_port).start()
            except StoreInUse as exc:
                print(f"council: {exc}; stop it, or pass another --data-dir", file=sys.stderr)
                return 1
            except RuntimeError as exc:
                print(f"council: could not start NATS: {exc}", file=sys.stderr)
                return 1
            env["NATS_URL"] = nats.url
        me = service_command()
        commands = [
            [*me, "gateway", "--host", args.host, "--port", str(args.port), *(["--insecure-no-auth"] if args.insecure_no_auth else [])],
            [*me, "orchestrator"],
            *([*me, "runner"] for _ in range(args.runners or default_runners())),
        ]
        # SIGTERM them should this process be SIGKILLed: orphans would hold the port and the store.
        procs = [subprocess.Popen(cmd, env=env, preexec_fn=exit_with_parent()) for cmd in commands]
        if not _wait_healthy(url, procs, lambda: stop):
            if not stop:  # Ctrl-C during start-up is a normal stop, not a failure
                print("council: the services did not become ready; see the log above", file=sys.stderr)
                code = 1
        else:
            mode = "simulated models (no provider keys set)" if "simulated" in settings.source else settings.source
            print(f"\ncouncil is up at {url}  (NATS {env['NATS_URL']}, {mode})")
            print(f"  auth: {_auth_state(url)}")
            print(f"  open {url}/ in a browser to ask and watch a council")
            print(
                f'  try: curl -X POST {url}/api/v1/council/query -d \'{{"prompt": "What is the best way to learn Rust?"}}\''
            )
            print('       council ask "What is the best way to learn Rust?"')
            print(f'  OpenAI SDK: base_url="{url}/v1", model="council"     MCP (streamable HTTP): {url}/mcp')
            print(f"  API docs: {url}/docs     Ctrl-C stops everything\n", flush=True)
            while not stop and all(p.poll() is None for p in procs):
                time.sleep(0.2)
            if not stop:
                print("council: a service exited; stopping the rest", file=sys.stderr)
                code = 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if nats is not None:
            nats.stop()
        print("council: stopped", file=sys.stderr)
    return code


# ---- clients --------------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace) -> int:
    from council.client.live import ask

    return ask(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from council.client.live import watch

    return watch(args)


def cmd_mcp(args: argparse.Namespace) -> int:
    from council.bootstrap import configure_logging, run, run_mcp_stdio

    configure_logging("WARNING")  # on stderr: stdout is the MCP client's
    run(run_mcp_stdio(_settings()))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from council.client.chat import chat

    return chat(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="council", description="An LLM council on NATS JetStream.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything: embedded NATS, gateway, orchestrator, runners")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--data-dir", default=".council-data", help="where the embedded NATS keeps the log")
    up.add_argument(
        "--runners", type=int, default=None, help="model runner processes (default: one per core, at most 4)"
    )
    up.add_argument("--nats-port", type=int, default=None, help="embedded NATS port (default: a free one)")
    up.add_argument(
        "--insecure-no-auth", action="store_true", help="with --host beyond loopback: serve although no API key exists"
    )
    up.set_defaults(func=cmd_up)

    gw = sub.add_parser("gateway", help="run the HTTP gateway against NATS_URL")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=int, default=8000)
    gw.add_argument("--workers", type=int, default=1)
    gw.add_argument(
        "--insecure-no-auth", action="store_true", help="listen beyond loopback although no API key exists (auth off)"
    )
    gw.set_defaults(func=cmd_gateway)

    keys = sub.add_parser("keys", help="create, list and revoke API keys (against NATS_URL)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="a new key for a tenant, shown once")
    create.add_argument("--tenant", required=True, help="whose councils it starts and reads (a-z, 0-9, -)")
    create.add_argument("--label", default="", help="what the key is for, shown by keys list")
    create.add_argument("--admin", action="store_true", help="the key reads every tenant's councils and sessions")
    create.set_defaults(func=cmd_keys)
    keys_sub.add_parser("list", help="every key: id, tenant, label, created, revoked").set_defaults(func=cmd_keys)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id; every gateway stops taking it at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys)

    sub.add_parser("orchestrator", help="run the orchestrator against NATS_URL").set_defaults(func=cmd_orchestrator)

    runner = sub.add_parser("runner", help="run a model runner against NATS_URL")
    runner.add_argument("--pools", default="", help="comma-separated provider pools (default: all configured)")
    runner.add_argument(
        "--max-in-flight", type=int, default=None, help="jobs held at once (default: runner.max_in_flight, 1024)"
    )
    runner.set_defaults(func=cmd_runner)

    for name, helptext, func in (
        ("ask", "submit a question and follow the deliberation live", cmd_ask),
        ("watch", "follow a running or finished council live", cmd_watch),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "ask":
            p.add_argument("prompt")
            p.add_argument("--models", default="", help="comma-separated member ids (default: the configured council)")
            p.add_argument("--chairman", default=None)
            p.add_argument("--max-tokens", type=int, default=None)
            p.add_argument("--temperature", type=float, default=None)
            p.add_argument("--detach", action="store_true", help="print the council id and exit")
        else:
            p.add_argument("council_id")
            p.add_argument("--after", type=int, default=0, help="resume after this event seq")
        p.add_argument("--url", default=os.environ.get("COUNCIL_URL", DEFAULT_URL))
        p.add_argument(
            "--plain", action="store_true", help="no live display: print each settled row once, then the final answer"
        )
        p.set_defaults(func=func)

    sub.add_parser(
        "mcp", help="serve the council's MCP tools over stdio (for Claude Code, Cursor…), against NATS_URL"
    ).set_defaults(func=cmd_mcp)

    talk = sub.add_parser("chat", help="hold a conversation: each message is a council that sees the ones before")
    talk.add_argument("--session", default=None, help="carry on this session (default: start a new one)")
    talk.add_argument("--mission", default=None, help="what the conversation is for (a new session's system message)")
    talk.add_argument("--mode", choices=["council", "group"], default="council")
    talk.add_argument("--models", default="", help="comma-separated member ids (default: the configured council)")
    talk.add_argument("--chairman", default=None)
    talk.add_argument("--url", default=os.environ.get("COUNCIL_URL", DEFAULT_URL))
    talk.add_argument("--plain", action="store_true", help="no live display: settled rows once, then each answer")
    talk.set_defaults(func=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
