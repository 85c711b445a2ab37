"""docker-compose.yml, checked statically (no Docker engine needed).

The file parses; every build context, Dockerfile and bind-mounted path exists; the services the
stack promises are there and wired to MinIO over s3a://; every ``${VAR}`` it reads is listed in
``.env.example``; and the ports and service names the README mentions agree with the file.
"""

from __future__ import annotations

import re

import pytest
import yaml

from spark_jobs.settings import PROJECT_DIR

COMPOSE = PROJECT_DIR / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
README = PROJECT_DIR / "README.md"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match[1]] = re.sub(r"\s+#.*$", "", match[2]).strip().strip("'")
    return values


def published_ports(compose: dict, env: dict[str, str]) -> dict[int, str]:
    """Host port -> service, with ``${VAR:-default}`` resolved from ``.env.example``."""
    ports = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            host = str(mapping).rsplit(":", 1)[0]
            var = re.fullmatch(r"\$\{(\w+):-(\d+)\}", host)
            ports[int(env.get(var[1], var[2]) if var else host)] = name
    return ports


def test_compose_has_the_promised_services(compose):
    services = set(compose["services"])
    airflow = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor"}
    assert airflow | {"airflow-triggerer", "airflow-init", "postgres"} <= services
    assert {"spark-master", "spark-worker", "minio", "minio-init", "kafka"} <= services


def test_every_build_context_dockerfile_and_mount_exists(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = PROJECT_DIR / build["context"]
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (PROJECT_DIR / source).exists(), f"{name}: {source}"
    dockerfile = (PROJECT_DIR / "docker" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (PROJECT_DIR / source).exists(), f"Dockerfile copies missing {source}"


def test_airflow_runs_on_postgres_and_the_dags_on_s3a_minio(compose):
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-triggerer"):
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["LAKEHOUSE_ROOT"].startswith("s3a://")
        assert env["LAKEHOUSE_LANDING"].startswith("s3://")
        assert env["LAKEHOUSE_S3_ENDPOINT"] == "http://minio:9000"
        assert '"spark://spark-master"' in env["AIRFLOW_CONN_SPARK_DEFAULT"]
        assert "airflow-api-server:8080" in env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    init = compose["services"]["minio-init"]
    script = " ".join(init["command"])
    assert "mc mb" in script and "$$LANDING_BUCKET" in script and "$$LAKE_BUCKET" in script
    assert init["environment"]["LANDING_BUCKET"] == "${LANDING_BUCKET:-landing}"
    kafka = compose["services"]["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert "zookeeper" not in compose["services"]


def test_every_variable_the_compose_file_reads_is_in_env_example(env_example):
    names = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert names, "expected ${...} settings"
    assert names <= set(env_example), names - set(env_example)


def test_env_example_holds_no_real_secret(env_example):
    for name, value in env_example.items():
        if re.search(r"PASSWORD|SECRET", name) and value:
            assert value.startswith("change-me"), name


def test_published_ports_agree_with_env_example(compose, env_example):
    ports = published_ports(compose, env_example)
    assert ports[int(env_example["AIRFLOW_PORT"])] == "airflow-api-server"
    assert ports[int(env_example["MINIO_API_PORT"])] == "minio"
    assert ports[int(env_example["MINIO_CONSOLE_PORT"])] == "minio"
    assert ports[int(env_example["SPARK_MASTER_UI_PORT"])] == "spark-master"
    assert ports[int(env_example["KAFKA_EXTERNAL_PORT"])] == "kafka"


def test_readme_ports_and_service_names_agree_with_compose(compose, env_example):
    if not README.exists():
        pytest.skip("README.md not written yet")
    text = README.read_text()
    ports = published_ports(compose, env_example)
    for port in re.findall(r"localhost:(\d+)", text):
        assert int(port) in ports, f"README mentions localhost:{port}, not published"
    for service in re.findall(r"docker compose (?:run --rm|exec|logs|up -d) ([a-z][\w-]*)", text):
        assert service in compose["services"], f"README names unknown service {service}"


def test_the_streaming_job_is_a_service_on_the_compose_kafka_and_minio(compose):
    services = compose["services"]
    stream = services["stream"]
    assert stream["image"] == services["spark-master"]["image"]  # the project's image
    assert stream["command"] == ["lakehouse", "stream"]
    env = stream["environment"]
    listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{env['LAKEHOUSE_KAFKA_BOOTSTRAP']}" in listeners.split(",")
    assert env["LAKEHOUSE_SPARK_MASTER"].startswith("local[")  # its own long-running driver
    assert env["LAKEHOUSE_ROOT"].startswith("s3a://")
    assert env["LAKEHOUSE_STREAM_ARCHIVE"].startswith("s3://${LANDING_BUCKET")
    assert {"kafka", "minio-init"} <= set(stream["depends_on"])
    topics = re.fullmatch(r"\$\{\w+:-(.+)\}", env["LAKEHOUSE_STREAM_TOPICS"])[1]
    from spark_jobs.ods.adapters import ADAPTERS
    from spark_jobs.settings import _parse_mapping

    assert set(_parse_mapping(topics).values()) <= set(ADAPTERS)
    replay = services["replay-kafka"]
    assert replay["entrypoint"] == ["lakehouse", "replay"]
    assert replay["command"][1:3] == ["--to", f"kafka://{env['LAKEHOUSE_KAFKA_BOOTSTRAP']}/rees46"]
    assert _parse_mapping(topics)["rees46"] == "canonical"


def test_the_image_resolves_the_spark_kafka_connector_the_stream_service_needs():
    from spark_jobs.cli import build_parser

    dockerfile = (PROJECT_DIR / "docker" / "Dockerfile").read_text()
    steps = re.split(r"\n(?=[A-Z]+ )", dockerfile)
    [setup] = [s for s in steps if s.startswith("RUN") and "lakehouse setup" in s]
    assert "install -y --no-install-recommends maven" in setup  # mvn resolves the connector
    assert "--with-spark-kafka" in setup and "--with-s3" in setup
    assert build_parser().parse_args(["setup", "--with-spark-kafka"]).with_spark_kafka
