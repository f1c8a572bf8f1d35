"""The command line as a user runs it: `council up`, `council ask`, `council watch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from council.cli import default_runners, service_command
from council.common.embedded import free_port
from tests.e2e.procs import Services, wait_ready, write_config

SCRIPT = str(Path(sys.executable).with_name("council"))  # the console script `pip install` made


def council(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [SCRIPT, *args] if cwd else service_command(*args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def start_up(
    tmp_path: Path, port: int, env: dict[str, str], log_name: str, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    log = (tmp_path / log_name).open("w")
    args = ("up", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    up = subprocess.Popen(
        [SCRIPT, *args] if cwd else service_command(*args),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,  # its own process group, as in a terminal
    )
    log.close()
    wait_ready(f"http://127.0.0.1:{port}", up, tmp_path / log_name, timeout=60)
    return up


def up_env(tmp_path: Path) -> dict[str, str]:
    """The environment `council up` gets in these tests: its own NATS, the quick simulated catalogue."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    env["COUNCIL_CONFIG"] = str(write_config(tmp_path))
    return env


def stop_up(up: subprocess.Popen[bytes]) -> int:
    """Ctrl-C as a terminal sends it: SIGINT to the whole group, nats-server and services included."""
    os.killpg(up.pid, signal.SIGINT)
    return up.wait(timeout=30)


def test_council_up_runs_everything_stops_cleanly_and_keeps_councils_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = up_env(tmp_path)
    up = start_up(tmp_path, port, env, "up.log")
    try:
        asked = council("ask", "--url", url, "--plain", "What is the best way to learn Rust?", env=env)
        assert asked.returncode == 0, asked.stderr
        assert "# Final Answer" in asked.stdout and "Synthesized conclusion" in asked.stdout
        assert "✓ simulated/atlas" in asked.stdout  # the live rows, printed once each when not a terminal
        council_id = asked.stderr.split()[1]
    finally:
        code = stop_up(up)
    output = (tmp_path / "up.log").read_text()
    assert f"council is up at {url}" in output
    assert code == 0 and "council: stopped" in output
    assert "Traceback" not in output
    again = start_up(tmp_path, port, env, "up-again.log")  # same data dir: the log survived
    try:
        kept = httpx.get(f"{url}/api/v1/council/{council_id}", params={"format": "json"}, timeout=10).json()
        assert kept["status"] == "completed" and kept["prompt"] == "What is the best way to learn Rust?"
    finally:
        assert stop_up(again) == 0


def children_of(parent: int) -> dict[int, str]:
    """The live child processes of ``parent`` and their command lines, read from /proc (Linux)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name is in parentheses and may hold spaces: fields follow its ")".
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue  # it ended while we looked
            if int(ppid) == parent and state not in ("Z", "X"):
                found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie nobody has reaped yet has ended."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def nats_server_of(children: dict[int, str]) -> int:
    (pid,) = (pid for pid, command in children.items() if "nats-server" in command)
    return pid


@pytest.mark.skipif(sys.platform != "linux", reason="a parent-death signal (PR_SET_PDEATHSIG) exists only on Linux")
def test_a_sigkilled_council_up_takes_its_nats_server_and_services_with_it(tmp_path: Path) -> None:
    port = free_port()
    env = up_env(tmp_path)
    up = start_up(tmp_path, port, env, "up.log")
    children = children_of(up.pid)
    nats_server = nats_server_of(children)
    assert len(children) == 3 + default_runners()  # nats-server, gateway, orchestrator, a runner per core
    try:
        os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: command for pid, command in children.items() if alive(pid)}
        assert not left, f"still running after their council up was SIGKILLed: {left}"
    finally:
        for pid in children:  # what this test started, should the fix not hold
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    again = start_up(tmp_path, port, env, "up-again.log")  # the same data dir and port
    try:
        assert nats_server_of(children_of(again.pid)) != nats_server
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200
    finally:
        assert stop_up(again) == 0
    assert "Traceback" not in (tmp_path / "up-again.log").read_text()


def test_a_second_council_up_on_a_data_dir_in_use_refuses_naming_its_nats_server(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    port = free_port()
    up = start_up(tmp_path, port, env, "up.log")
    try:
        nats_server = nats_server_of(children_of(up.pid)) if sys.platform == "linux" else None
        second = subprocess.Popen(
            service_command("up", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            _, refusal = second.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            stop_up(second)  # it started a second server on the same store: stop it as Ctrl-C would
            raise AssertionError("a second council up ran on a data dir in use") from None
        assert second.returncode == 1, refusal
        assert "in use" in refusal and f"started by process {up.pid} (still running)" in refusal
        if nats_server is not None:
            assert f"nats-server pid {nats_server}" in refusal
        assert "Traceback" not in refusal
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200  # the first one untouched
    finally:
        assert stop_up(up) == 0


def test_council_up_in_a_project_with_its_own_services_and_schemas_packages(tmp_path: Path) -> None:
    project = tmp_path / "project"  # what a user's project very often holds
    for name in ("services", "schemas", "council"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"raise ImportError('imported the project\\'s own {name}')\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "PYTHONPATH")}
    env["COUNCIL_CONFIG"] = str(write_config(tmp_path))
    up = start_up(tmp_path, port, env, "up.log", cwd=project)
    try:
        asked = council("ask", "--url", url, "--plain", "Which package runs?", env=env, cwd=project)
        assert asked.returncode == 0, asked.stderr
        assert "# Final Answer" in asked.stdout
    finally:
        assert stop_up(up) == 0
    output = (tmp_path / "up.log").read_text()
    assert "imported the project" not in output and "Traceback" not in output


def test_ask_detach_then_watch_from_a_seq(services: Services) -> None:
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    detached = council("ask", "--url", url, "--detach", "Detach me")
    assert detached.returncode == 0, detached.stderr
    council_id = detached.stdout.strip()
    assert council_id.startswith("council_")
    watched = council("watch", council_id, "--url", url, "--plain")
    assert watched.returncode == 0 and "# Final Answer" in watched.stdout
    assert "Stage 1: first opinions" in watched.stdout and "✓ simulated/atlas" in watched.stdout
    frames = httpx.get(f"{url}/api/v1/council/{council_id}/events", timeout=30).text
    ids = [line[4:] for line in frames.splitlines() if line.startswith("id: ")]
    sixth = ids[5]  # after stage 1 started: a watch from here never sees its header
    resumed = council("watch", council_id, "--url", url, "--plain", "--after", sixth)
    assert resumed.returncode == 0 and "# Final Answer" in resumed.stdout
    assert "Stage 1: first opinions" not in resumed.stdout and "Stage 3: synthesis" in resumed.stdout
    # From the terminal event on there is nothing left to stream: the stored answer, at once.
    ended = council("watch", council_id, "--url", url, "--plain", "--after", ids[-1], timeout=20)
    assert ended.returncode == 0 and "# Final Answer" in ended.stdout and "connection lost" not in ended.stderr


def test_ask_explains_bad_input_and_an_absent_server(services: Services) -> None:
    url = services.start_gateway()
    bad = council("ask", "--url", url, "--models", "nope/model", "hi")
    assert bad.returncode == 2 and "nope/model" in bad.stderr and "Traceback" not in bad.stderr
    gone = council("ask", "--url", f"http://127.0.0.1:{free_port()}", "hi")
    assert gone.returncode == 2 and "cannot reach" in gone.stderr and "Traceback" not in gone.stderr


def test_a_bad_config_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        write_config(tmp_path).read_text().replace('chairman = "simulated/sage"', 'chairman = "who/else"')
    )
    env = {**os.environ, "COUNCIL_CONFIG": str(config), "NATS_URL": "nats://127.0.0.1:1"}
    started = time.monotonic()
    result = council("orchestrator", env=env, timeout=30)
    assert result.returncode == 2 and "council.chairman" in result.stderr and "who/else" in result.stderr
    assert time.monotonic() - started < 10  # refused before any attempt to reach NATS
    typed = tmp_path / "typed.toml"
    typed.write_text(write_config(tmp_path).read_text().replace("max_tokens = 400", 'max_tokens = "many"'))
    result = council("gateway", env={**env, "COUNCIL_CONFIG": str(typed)}, timeout=30)
    assert result.returncode == 2 and "$.council.max_tokens" in result.stderr
