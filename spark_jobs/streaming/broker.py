"""A local single-node Apache Kafka broker (KRaft: broker and controller in one JVM).

``lakehouse kafka start|stop|status`` runs it from the official Apache Kafka jars on Maven
Central (``LAKEHOUSE_KAFKA_PACKAGES``, default :data:`DEFAULT_KAFKA_PACKAGES`), resolved once by
``lakehouse setup --with-kafka`` into the project cache, so starting it needs no network.

- Listens on ``LAKEHOUSE_KAFKA_BOOTSTRAP`` (default ``127.0.0.1:9092``, PLAINTEXT); its
  controller listens on the next port (``LAKEHOUSE_KAFKA_CONTROLLER_PORT`` to choose another).
- Keeps its state in ``LAKEHOUSE_KAFKA_DIR`` (default ``<cache>/kafka``): ``server.properties``,
  ``log4j2.properties``, ``data/`` (``log.dirs``, formatted once with ``kafka.tools.StorageTool``
  and a static ``controller.quorum.voters``), ``server.log`` (the previous run's in
  ``server.log.1``) and ``broker.pid``.
- Runs in the background in its own session (``setsid``), so it outlives the command that started
  it and a Ctrl-C in that terminal does not reach it. It counts as started when its log says
  ``Kafka Server started`` (an open port is not enough: the broker accepts connections before its
  metadata is loaded).
- Stopped by the recorded PID: SIGTERM (a clean shutdown flushes and closes the logs), up to
  ``grace`` seconds, then SIGKILL. A second ``start`` is a no-op; ``stop`` of a stopped broker is
  not an error.

Single node means replication factor 1 everywhere (offsets and transaction topics included);
topics get 3 partitions unless created otherwise.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.common.maven import cached_artifacts, resolve_artifacts
from spark_jobs.settings import Settings, load_settings

log = logging.getLogger("lakehouse")

#: the broker (Scala 2.13 build) and the SLF4J 1.x binding that routes its logs to Log4j 2
#: (log4j-core/-api come with kafka-server; 2.25.5 is the Log4j version Kafka 4.4.0 uses)
DEFAULT_KAFKA_PACKAGES = (
    "org.apache.kafka:kafka_2.13:4.4.0",
    "org.apache.logging.log4j:log4j-slf4j-impl:2.25.5",
)
READY_LINE = "Kafka Server started"
MAIN_CLASS = "kafka.Kafka"
NODE_ID = 1
DEFAULT_START_TIMEOUT_SEC = 120.0
DEFAULT_STOP_GRACE_SEC = 30.0

_LOG4J2 = """\
# written by lakehouse kafka start: the broker logs to stdout, which goes to server.log
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d{yyyy-MM-dd HH:mm:ss,SSS}{UTC}] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
"""


def kafka_packages() -> list[str]:
    """Maven coordinates of the broker: ``LAKEHOUSE_KAFKA_PACKAGES`` (comma-separated) or the
    defaults."""
    text = os.environ.get("LAKEHOUSE_KAFKA_PACKAGES", "").strip()
    return [c.strip() for c in text.split(",") if c.strip()] or list(DEFAULT_KAFKA_PACKAGES)


def broker_jars(resolve: bool = False) -> list[str]:
    """The broker's classpath (about 48 jars, 43 MB for Kafka 4.4.0).

    Args:
        resolve: resolve with Maven when not cached yet (``lakehouse setup --with-kafka``).

    Returns:
        Absolute jar paths; empty when not cached and ``resolve`` is false.

    Raises:
        RuntimeError: Maven is missing or could not resolve the packages.
    """
    packages = kafka_packages()
    if resolve:
        return resolve_artifacts("kafka-broker-jars", packages)
    return cached_artifacts("kafka-broker-jars", packages)


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """``"127.0.0.1:9092"`` (first of a comma-separated list) -> ``("127.0.0.1", 9092)``.

    Raises:
        ValueError: no port.
    """
    first = bootstrap.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT in LAKEHOUSE_KAFKA_BOOTSTRAP, got {bootstrap!r}")
    return host or "127.0.0.1", int(port)


@dataclass(frozen=True)
class BrokerPaths:
    """Where one local broker keeps its files (all under ``root``)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``lakehouse kafka status`` prints: whether it runs (``pid``) and where."""

    running: bool
    pid: int | None
    bootstrap: str
    root: Path

    def describe(self) -> str:
        """One line, e.g. ``kafka: running (pid 42) on 127.0.0.1:9092; state in /x``."""
        paths = BrokerPaths(self.root)
        if self.running:
            return (
                f"kafka: running (pid {self.pid}) on {self.bootstrap}; data in {paths.data}, "
                f"log {paths.log}"
            )
        return f"kafka: not running (bootstrap {self.bootstrap}; state in {self.root})"


def controller_port(bootstrap_port: int) -> int:
    """The controller listener's port: ``LAKEHOUSE_KAFKA_CONTROLLER_PORT`` or bootstrap + 1."""
    text = os.environ.get("LAKEHOUSE_KAFKA_CONTROLLER_PORT", "").strip()
    return int(text) if text else bootstrap_port + 1


def server_properties(host: str, port: int, ctl_port: int, data_dir: Path) -> str:
    """``server.properties`` of a combined broker+controller node with replication factor 1."""
    props = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{host}:{ctl_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": 3,
        "default.replication.factor": 1,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # a single-consumer group should not wait 3 s for more members
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
    }
    return "# written by lakehouse kafka start\n" + "".join(f"{k}={v}\n" for k, v in props.items())


def _kafka_uuid() -> str:
    """A cluster id as Kafka writes them: 16 random bytes, URL-safe base64, no padding (never
    starting with ``-``, which the tools would read as an option)."""
    while True:
        text = urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _is_broker_process(pid: int, config: Path) -> bool:
    """True when ``pid`` is a live (not zombie) ``kafka.Kafka`` JVM started with ``config``."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    except ChildProcessError:
        pass
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        if Path("/proc/self").exists():
            return False
        try:  # no procfs: signal 0 tells whether the pid exists
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return state != "Z" and MAIN_CLASS.encode() in argv and str(config).encode() in argv


def _running_pid(paths: BrokerPaths) -> int | None:
    """PID from the pid file when that process is this broker; removes a stale pid file."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_broker_process(pid, paths.config):
        return pid
    paths.pid.unlink(missing_ok=True)
    return None


def broker_status(settings: Settings | None = None) -> BrokerStatus:
    """Whether the local broker of ``settings.kafka_dir`` runs, and where."""
    settings = settings or load_settings()
    paths = BrokerPaths(Path(settings.kafka_dir))
    pid = _running_pid(paths)
    return BrokerStatus(pid is not None, pid, settings.kafka_bootstrap, paths.root)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise RuntimeError("Java 17 is required to run the Kafka broker (java not found)")
    return java


def _format_storage(java: str, classpath: str, paths: BrokerPaths) -> None:
    """Format ``log.dirs`` once (``meta.properties`` marks a formatted directory)."""
    if (paths.data / "meta.properties").exists():
        return
    command = [
        java,
        "-cp",
        classpath,
        f"-Dlog4j2.configurationFile=file:{paths.log4j}",
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        _kafka_uuid(),
        "--config",
        str(paths.config),
        "--ignore-formatted",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"formatting Kafka storage {paths.data} failed:\n{result.stdout}{result.stderr}"
        )
    log.info("KAFKA formatted %s", paths.data)


def start_broker(
    settings: Settings | None = None, timeout: float = DEFAULT_START_TIMEOUT_SEC
) -> BrokerStatus:
    """Start the local broker in the background; return once it has started.

    Args:
        settings: ``kafka_bootstrap`` (host and port to listen on) and ``kafka_dir`` (state).
        timeout: seconds to wait for ``Kafka Server started`` in the log.

    Returns:
        The running broker's status (the existing one when it already runs: a no-op).

    Raises:
        RuntimeError: jars not cached (run ``lakehouse setup --with-kafka``), a port taken by
            another process, a failed format, or the broker exited or did not start within
            ``timeout`` (the message carries the tail of its log; the process is killed).
    """
    settings = settings or load_settings()
    paths = BrokerPaths(Path(settings.kafka_dir))
    status = broker_status(settings)
    if status.running:
        log.info("KAFKA already running (pid %s) on %s", status.pid, status.bootstrap)
        return status
    jars = broker_jars()
    if not jars:
        raise RuntimeError("the Kafka jars are not cached yet: run `lakehouse setup --with-kafka`")
    host, port = parse_bootstrap(settings.kafka_bootstrap)
    ctl_port = controller_port(port)
    for p in (port, ctl_port):
        if not _port_free(host, p):
            raise RuntimeError(f"cannot start Kafka: {host}:{p} is in use by another process")
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(server_properties(host, port, ctl_port, paths.data))
    paths.log4j.write_text(_LOG4J2)
    java, classpath = _java(), os.pathsep.join(jars)
    _format_storage(java, classpath, paths)
    if paths.log.exists():
        paths.log.replace(paths.log.with_name("server.log.1"))
    heap = os.environ.get("LAKEHOUSE_KAFKA_HEAP", "512m")
    command = [
        java,
        f"-Xms{min(256, _mib(heap))}m",
        f"-Xmx{heap}",
        "-Djava.awt.headless=true",
        "-Duser.timezone=UTC",
        f"-Dlog4j2.configurationFile=file:{paths.log4j}",
        *shlex.split(os.environ.get("LAKEHOUSE_KAFKA_JAVA_OPTIONS", "")),
        "-cp",
        classpath,
        MAIN_CLASS,
        str(paths.config),
    ]
    with open(paths.log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=paths.root,
            start_new_session=True,  # setsid: its own session and process group
            close_fds=True,
        )
    paths.pid.write_text(f"{process.pid}\n")
    log.info("KAFKA starting (pid %d) on %s:%d, state in %s", process.pid, host, port, paths.root)
    deadline = time.monotonic() + timeout
    while True:
        if READY_LINE in paths.log.read_text(errors="replace"):
            break
        exited = process.poll() is not None
        if exited or time.monotonic() > deadline:
            if not exited:
                _terminate(process.pid, paths, grace=10)
            paths.pid.unlink(missing_ok=True)
            why = f"exited with code {process.returncode}" if exited else f"timed out ({timeout}s)"
            raise RuntimeError(
                f"Kafka broker {why} before '{READY_LINE}'; last lines of {paths.log}:\n"
                + _tail(paths.log)
            )
        time.sleep(0.25)
    log.info("KAFKA started (pid %d) on %s:%d", process.pid, host, port)
    return BrokerStatus(True, process.pid, settings.kafka_bootstrap, paths.root)


def _mib(size: str) -> int:
    """``"512m"`` -> 512, ``"2g"`` -> 2048 (JVM size suffixes)."""
    text = size.strip().lower()
    factor = {"k": 1 / 1024, "m": 1, "g": 1024}.get(text[-1:], None)
    return int(float(text[:-1]) * factor) if factor else int(text) // (1024 * 1024)


def _terminate(pid: int, paths: BrokerPaths, grace: float) -> bool:
    """SIGTERM, wait up to ``grace`` s, then SIGKILL. True when it needed SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _is_broker_process(pid, paths.config):
            return False
        time.sleep(0.2)
    log.warning("KAFKA pid %d still running %.0fs after SIGTERM: SIGKILL", pid, grace)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if not _is_broker_process(pid, paths.config):
            break
        time.sleep(0.1)
    return True


def stop_broker(settings: Settings | None = None, grace: float = DEFAULT_STOP_GRACE_SEC) -> bool:
    """Stop the local broker by its recorded PID (SIGTERM, ``grace`` s, then SIGKILL).

    Returns:
        True when a running broker was stopped, False when none was running (not an error).
    """
    settings = settings or load_settings()
    paths = BrokerPaths(Path(settings.kafka_dir))
    pid = _running_pid(paths)
    if pid is None:
        log.info("KAFKA not running (state in %s)", paths.root)
        return False
    log.info("KAFKA stopping pid %d", pid)
    _terminate(pid, paths, grace)
    paths.pid.unlink(missing_ok=True)
    log.info("KAFKA stopped")
    return True
