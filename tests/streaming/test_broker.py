"""``lakehouse kafka start|stop|status`` against a real broker (see conftest.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from tests.ports import free_port
from tests.streaming.conftest import broker_env, run_cli


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_status_says_where_the_running_broker_listens(kafka_broker):
    result = kafka_broker.cli("kafka", "status")
    assert result.returncode == 0, result.stderr
    assert f"running (pid {kafka_broker.pid}) on {kafka_broker.bootstrap}" in result.stdout
    assert str(kafka_broker.root / "data") in result.stdout
    assert "Kafka Server started" in (kafka_broker.root / "server.log").read_text()


def test_second_start_is_a_no_op(kafka_broker):
    pid = kafka_broker.pid
    started = time.monotonic()
    result = kafka_broker.cli("kafka", "start")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert kafka_broker.pid == pid and _alive(pid)
    assert time.monotonic() - started < 10


def test_stop_twice_then_start_again_keeps_the_topics(kafka_broker):
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic("survives_restart", num_partitions=2)])[
        "survives_restart"
    ].result(timeout=30)
    old_pid = kafka_broker.pid

    stopped = kafka_broker.cli("kafka", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "not running" in stopped.stdout
    assert not _alive(old_pid)
    assert not (kafka_broker.root / "broker.pid").exists()

    status = kafka_broker.cli("kafka", "status")
    assert status.returncode == 3
    assert "not running" in status.stdout

    again = kafka_broker.cli("kafka", "stop")
    assert again.returncode == 0, again.stderr

    restarted = kafka_broker.cli("kafka", "start", timeout=240)
    assert restarted.returncode == 0, restarted.stderr
    assert kafka_broker.pid != old_pid and _alive(kafka_broker.pid)
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    topics = admin.list_topics(timeout=30).topics
    assert len(topics["survives_restart"].partitions) == 2


def test_start_refuses_a_port_in_use_with_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["kafka", "start"], broker_env(tmp_path / "k", port, free_port()), 60)
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is in use" in result.stderr
    assert not (tmp_path / "k" / "broker.pid").exists()


def test_a_broker_that_dies_at_start_reports_its_log_tail(tmp_path):
    env = broker_env(tmp_path / "k", free_port(), free_port())
    result = run_cli(["kafka", "start"], {**env, "LAKEHOUSE_KAFKA_HEAP": "1k"}, 120)
    assert result.returncode == 1
    assert "Kafka broker exited with code" in result.stderr
    assert "heap" in result.stderr.lower()  # the JVM's own complaint, from the log tail
    assert not (tmp_path / "k" / "broker.pid").exists()
