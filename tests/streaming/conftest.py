"""One real local Kafka broker for the streaming tests, run through the command line.

Session-scoped: started by ``lakehouse kafka start`` on two free ports with its state in a
temporary folder, stopped by ``lakehouse kafka stop`` (by its PID) at the end. When the Kafka jars
are not cached yet, the fixture first runs the set-up step (``lakehouse setup --with-kafka``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from spark_jobs.settings import PROJECT_DIR
from tests.ports import free_port


@dataclass(frozen=True)
class Broker:
    """The test broker: where it listens, where it keeps its state, the env that points there."""

    bootstrap: str
    root: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        """Run ``lakehouse <args>`` as a user would, against this broker."""
        return run_cli(list(args), {**self.env, **env}, timeout)

    @property
    def pid(self) -> int:
        return int((self.root / "broker.pid").read_text())


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "spark_jobs.cli", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def broker_env(root: Path, port: int, controller_port: int) -> dict[str, str]:
    """Environment of a CLI run against a broker on ``port`` with its state in ``root``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])
        ),
        "LAKEHOUSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "LAKEHOUSE_KAFKA_CONTROLLER_PORT": str(controller_port),
        "LAKEHOUSE_KAFKA_DIR": str(root),
    }


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Broker:
    from spark_jobs.streaming.broker import broker_jars

    root = tmp_path_factory.mktemp("kafka")
    port, controller_port = free_port(), free_port()
    while controller_port == port:
        controller_port = free_port()
    env = broker_env(root, port, controller_port)
    if not broker_jars():
        setup = run_cli(["setup", "--with-kafka"], env, timeout=900)
        assert setup.returncode == 0, setup.stderr
    broker = Broker(f"127.0.0.1:{port}", root, env)
    started = broker.cli("kafka", "start", timeout=240)
    assert started.returncode == 0, started.stdout + started.stderr
    yield broker
    pid_file = root / "broker.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    stopped = broker.cli("kafka", "stop", timeout=120)
    if stopped.returncode != 0 and pid is not None:  # never leave a broker behind
        os.kill(pid, signal.SIGKILL)
    assert stopped.returncode == 0, stopped.stderr
