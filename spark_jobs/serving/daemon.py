"""Background server processes started by the CLI: PID file, readiness wait, stop by PID.

A server runs in its own session (process group), so ``stop`` reaches the JVM and every child
that a launcher script (``spark-submit``) starts. Its PID goes to ``<state>/<name>.pid`` and its
output to ``<state>/<name>.log``. ``start`` of a running server is a no-op, ``stop`` of a stopped
one is not an error.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("lakehouse")


def pid_file(state_dir: Path, name: str) -> Path:
    """``<state_dir>/<name>.pid``."""
    return state_dir / f"{name}.pid"


def log_file(state_dir: Path, name: str) -> Path:
    """``<state_dir>/<name>.log``: the server's stdout and stderr."""
    return state_dir / f"{name}.log"


def running_pid(state_dir: Path, name: str) -> int | None:
    """PID of the recorded server when that process is alive, else None (a stale PID file,
    left by a crash or a reboot, counts as not running)."""
    path = pid_file(state_dir, name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by another user
        return pid
    return pid


def log_tail(state_dir: Path, name: str, lines: int = 30) -> str:
    """The last ``lines`` lines of the server's log ("" when there is none)."""
    try:
        return "\n".join(
            log_file(state_dir, name).read_text(errors="replace").splitlines()[-lines:]
        )
    except OSError:
        return ""


def start_daemon(
    name: str,
    argv: list[str],
    state_dir: Path,
    ready: Callable[[], bool],
    timeout_sec: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in a new session, record its PID and wait until ``ready()`` is true.

    Args:
        name: server name: PID and log file names.
        argv: the command.
        state_dir: folder of the PID and log files (created).
        ready: probe called about twice a second; true once the server accepts clients.
        timeout_sec: how long to wait for ``ready``.
        env: full environment of the process (default: this process's).
        cwd: working folder of the process (default: ``state_dir``).

    Returns:
        The server's PID (the existing one when it was already running).

    Raises:
        RuntimeError: the process exited, or was not ready in time (it is then stopped); the
            message carries the tail of its log.
    """
    pid = running_pid(state_dir, name)
    if pid is not None:
        log.info("%s already running (pid %d)", name, pid)
        return pid
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(log_file(state_dir, name), "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd or state_dir,
            env=env,
            start_new_session=True,
        )
    pid_file(state_dir, name).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file(state_dir, name).unlink(missing_ok=True)
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} while starting; log "
                f"{log_file(state_dir, name)}:\n{log_tail(state_dir, name)}"
            )
        if ready():
            return proc.pid
        time.sleep(0.5)
    stop_daemon(state_dir, name)
    raise RuntimeError(
        f"{name} was not ready after {timeout_sec:.0f} s; log {log_file(state_dir, name)}:\n"
        f"{log_tail(state_dir, name)}"
    )


def stop_daemon(state_dir: Path, name: str, grace_sec: float = 20) -> bool:
    """Stop the recorded server's process group: TERM, then KILL after ``grace_sec``.

    Returns:
        True when a running server was stopped, False when none was running.
    """
    pid = running_pid(state_dir, name)
    pid_file(state_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_sec
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        log.warning("%s (pid %d) ignored TERM for %.0f s; killing it", name, pid, grace_sec)
        _signal_group(pid, signal.SIGKILL)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        # reap it when it is our child, so a zombie does not count as alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
