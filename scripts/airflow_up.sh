#!/usr/bin/env bash
# Start a local Airflow 3 for this project's DAGs: API server (UI + REST), scheduler (LocalExecutor,
# parallelism 2), DAG processor and triggerer, on a SQLite metadata DB under $AIRFLOW_HOME, bound to
# 127.0.0.1 only, no example DAGs. All processes run in one new session (setsid) whose id is written
# to $AIRFLOW_HOME/airflow.pid; scripts/airflow_down.sh stops every process of that session.
#
# Settings come from the environment (and .env when present; see .env.example):
#   AIRFLOW_HOME (default ./airflow_home), AIRFLOW_PORT (8080), AIRFLOW_UP_TIMEOUT (300 s),
#   AIRFLOW_CONN_SPARK_DEFAULT / AIRFLOW_CONN_FS_DEFAULT / AIRFLOW_CONN_AWS_DEFAULT, LAKEHOUSE_*.
# Prints the URL and the admin login once every component reports healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT_DIR=$(pwd)

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi

export AIRFLOW_HOME=${AIRFLOW_HOME:-$PROJECT_DIR/airflow_home}
PORT=${AIRFLOW_PORT:-8080}
TIMEOUT=${AIRFLOW_UP_TIMEOUT:-300}
PIDFILE="$AIRFLOW_HOME/airflow.pid"
LOG="$AIRFLOW_HOME/airflow.log"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
VENV_BIN="$PROJECT_DIR/.venv/bin"

if [ ! -x "$VENV_BIN/airflow" ]; then
  echo "airflow-up: $VENV_BIN/airflow not found; run 'make setup' first" >&2
  exit 1
fi
if [ -f "$PIDFILE" ] && [ -n "$(ps -o pid= -s "$(cat "$PIDFILE")" 2>/dev/null)" ]; then
  echo "airflow-up: already running (session $(cat "$PIDFILE")); stop it with scripts/airflow_down.sh"
  exit 0
fi
mkdir -p "$AIRFLOW_HOME"

# --- configuration (environment only; nothing is written to airflow.cfg by hand) --------------
export PATH="$VENV_BIN:$PATH"
export LAKEHOUSE_PROJECT_DIR=${LAKEHOUSE_PROJECT_DIR:-$PROJECT_DIR}
export SPARK_CONF_DIR=${SPARK_CONF_DIR:-$PROJECT_DIR/.cache/spark-conf}
export AIRFLOW__CORE__DAGS_FOLDER=${AIRFLOW__CORE__DAGS_FOLDER:-$PROJECT_DIR/dags}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-2}
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=${AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG:-2}
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__WORKERS=${AIRFLOW__API__WORKERS:-1}
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
# a task's calls to the execution API: on a busy laptop (Spark tasks on every core) one API
# worker may answer after Airflow's default 5 s, which fails the task; wait longer instead
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-60}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW_CONN_SPARK_DEFAULT=${AIRFLOW_CONN_SPARK_DEFAULT:-'{"conn_type": "spark", "host": "local[*]"}'}
export AIRFLOW_CONN_FS_DEFAULT=${AIRFLOW_CONN_FS_DEFAULT:-'{"conn_type": "fs"}'}
# one signing secret shared by all components (generated once per AIRFLOW_HOME, never committed)
if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ]; then
  if [ ! -s "$AIRFLOW_HOME/.jwt_secret" ]; then
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(32))' >"$AIRFLOW_HOME/.jwt_secret")
  fi
  AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$AIRFLOW_HOME/.jwt_secret")
  export AIRFLOW__API_AUTH__JWT_SECRET
fi
if [ ! -f "$SPARK_CONF_DIR/spark-defaults.conf" ]; then
  echo "airflow-up: $SPARK_CONF_DIR/spark-defaults.conf missing; run 'make setup' first" >&2
  exit 1
fi

echo "airflow-up: preparing the metadata DB in $AIRFLOW_HOME"
airflow db migrate >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; exit 1; }

# --- start: one session; log servers off (logs are local files read by the API server) -------
setsid bash -c '
  echo $$ >"$1"
  airflow api-server --host 127.0.0.1 --port "$2" &
  airflow scheduler --skip-serve-logs &
  airflow dag-processor &
  airflow triggerer --skip-serve-logs &
  wait
' airflow-local "$PIDFILE" "$PORT" >>"$LOG" 2>&1 </dev/null &

# --- wait until healthy ----------------------------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
until python - "$PORT" <<'EOF' 2>/dev/null; do
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v2/monitor/health", timeout=5) as r:
    health = json.load(r)
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
sys.exit(0 if all((health.get(p) or {}).get("status") == "healthy" for p in parts) else 1)
EOF
  if [ $SECONDS -ge $deadline ] || { [ -f "$PIDFILE" ] && [ -z "$(ps -o pid= -s "$(cat "$PIDFILE")")" ]; }; then
    echo "airflow-up: not healthy after ${TIMEOUT}s; last log lines:" >&2
    tail -n 40 "$LOG" >&2
    "$PROJECT_DIR/scripts/airflow_down.sh" >&2 || true
    exit 1
  fi
  sleep 3
done

echo "airflow-up: Airflow is running (session $(cat "$PIDFILE"), log $LOG)"
echo "  UI and REST API: http://127.0.0.1:$PORT"
if [ -f "$PASSWORDS" ]; then
  echo "  login: admin / $(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS" 2>/dev/null || echo "see $PASSWORDS")"
  echo "  (generated password, stored in $PASSWORDS)"
fi
echo "  stop: scripts/airflow_down.sh (or make airflow-down)"
