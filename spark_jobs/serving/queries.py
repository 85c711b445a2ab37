"""Load the BI SQL (a view's SELECT or an ad-hoc query), check its parameters and bind them.

Parameters are named ``:name`` placeholders (``:app_id``, ``:start_date``, ...), found with
sqlglot (``exp.Placeholder``). A statement runs only when every one of them is given and no
unknown one is; values are bound in one of three ways:

- as SQL literals substituted through the sqlglot AST, quoted for the target dialect
  (:func:`render_literal_sql`; the local Spark Thrift Server and PostgreSQL stand-ins);
- for Athena ``StartQueryExecution``: the SQL with a positional ``?`` at each occurrence and
  ``ExecutionParameters``, one SQL literal string per ``?`` in text order (``"'web'"``, ``"10"``)
  (:func:`render_athena`);
- for the Redshift Data API ``ExecuteStatement``: the SQL with ``:name`` kept and
  ``Parameters=[{"name": ..., "value": ...}]`` with plain string values, which Redshift
  converts to the column's type (:func:`render_redshift`).

Dialects: a view is parsed in the dialect of its folder (``sql/athena/views`` as ``athena``,
``sql/redshift/views`` as ``redshift``). The query files of ``sql/queries/`` are written once in
the subset that Athena (Trino), Spark SQL and Redshift/PostgreSQL share and are parsed as
``athena`` (:data:`QUERY_DIALECT`); sqlglot transpiles them to the engine's dialect. The text
sent to an engine carries no comments.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sqlglot
from sqlglot import exp

from spark_jobs.settings import PROJECT_DIR

SQL_DIR = PROJECT_DIR / "sql"
QUERIES_DIR = SQL_DIR / "queries"
#: the dialect the files of sql/queries/ are parsed as (they are also linted as Athena SQL)
QUERY_DIALECT = "athena"

#: a parameter value: strings as the CLI gives them ('2024-03-01', '10'); the queries CAST them
ParamValue = str | int | float | Decimal | bool | dt.date | None

_SENTINEL = "__lakehouse_param_"
_SENTINEL_RE = re.compile(rf"{_SENTINEL}(\d+)__")


@dataclass(frozen=True)
class Engine:
    """Where a statement runs and how it gets there.

    ``source_dialect``: the dialect of the views it runs (``sql/<source_dialect>/views``) and of
    inline ``--query`` text; ``target_dialect``: the SQL it is sent; ``binding``: ``literal``,
    ``athena`` (positional ExecutionParameters) or ``redshift`` (named Data API parameters).
    """

    name: str
    source_dialect: str
    target_dialect: str
    binding: str


ENGINES: dict[str, Engine] = {
    "athena": Engine("athena", "athena", "athena", "athena"),
    "redshift": Engine("redshift", "redshift", "redshift", "redshift"),
    # the local stand-ins: Athena views run on a Spark Thrift Server, Redshift views on PostgreSQL
    "local-athena": Engine("local-athena", "athena", "spark", "literal"),
    "local-redshift": Engine("local-redshift", "redshift", "postgres", "literal"),
}


class QueryParameterError(ValueError):
    """The parameters given do not fit the statement (missing or unknown names, bad values).

    ``missing`` and ``unknown`` list the offending names (sorted); both are empty for a bad value.
    """

    def __init__(self, message: str, missing: Sequence[str] = (), unknown: Sequence[str] = ()):
        super().__init__(message)
        self.missing = sorted(missing)
        self.unknown = sorted(unknown)


@dataclass(frozen=True)
class Statement:
    """One parsed SELECT: its sqlglot tree, the dialect it was parsed in, and where it came from."""

    expression: exp.Expression
    dialect: str
    source: str

    @property
    def parameters(self) -> list[str]:
        """The ``:name`` parameters, each once, in the order they first appear in the text."""
        return list(dict.fromkeys(_placeholders_in_text_order(self.expression, self.dialect)))

    def sql(self, dialect: str | None = None) -> str:
        """The statement (parameters still ``:name``) in ``dialect`` (default: its own)."""
        return self.expression.sql(dialect or self.dialect, comments=False)


@dataclass(frozen=True)
class Prepared:
    """What an engine is sent: ``sql`` and ``parameters`` in the engine's native form
    (Athena: list of SQL literal strings; Redshift: list of ``{"name", "value"}``; literal
    binding: ``None``, the values are in the SQL)."""

    sql: str
    parameters: list[str] | list[dict[str, str]] | None


def parse_statement(sql: str, dialect: str, source: str = "<query>") -> Statement:
    """Parse exactly one statement; a ``CREATE VIEW ... AS SELECT`` gives its SELECT.

    Raises:
        ValueError: no statement, more than one, or not a query (after unwrapping a view).
        sqlglot.errors.ParseError: the text does not parse in ``dialect``.
    """
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    if len(statements) != 1:
        raise ValueError(f"{source}: expected one SQL statement, found {len(statements)}")
    [statement] = statements
    if isinstance(statement, exp.Create) and statement.args.get("kind") == "VIEW":
        statement = statement.expression
    if not isinstance(statement, exp.Query):
        raise ValueError(f"{source}: expected a SELECT (or a CREATE VIEW), got {statement.key}")
    for node in statement.find_all(exp.Placeholder):
        if not node.this:  # an anonymous "?" (its .name is "?")
            raise ValueError(f"{source}: positional '?' placeholder; name it (:name) instead")
    return Statement(statement, dialect, source)


def load_view(name: str, dialect: str) -> Statement:
    """The SELECT of ``sql/<dialect>/views/<name>.sql``, parsed as ``dialect``.

    Raises:
        ValueError: no such view (the message lists the views there are).
    """
    folder = SQL_DIR / dialect / "views"
    path = folder / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.sql"))) or "none"
        raise ValueError(f"no view {name!r} in {folder} (views: {known})")
    return parse_statement(path.read_text(), dialect, str(path))


def load_query_file(path: str | Path, dialect: str = QUERY_DIALECT) -> Statement:
    """A query file (one SELECT, or a CREATE VIEW whose SELECT is taken), parsed as ``dialect``.

    A bare name (``funnel_range``) is looked up in ``sql/queries/``.

    Raises:
        ValueError: the file does not exist or does not hold one query.
    """
    file = Path(path)
    if not file.is_file() and not file.suffix and (QUERIES_DIR / f"{path}.sql").is_file():
        file = QUERIES_DIR / f"{path}.sql"
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in QUERIES_DIR.glob("*.sql")))
        raise ValueError(f"no query file {str(path)!r} (sql/queries/: {known})")
    return parse_statement(file.read_text(), dialect, str(file))


def check_parameters(statement: Statement, params: Mapping[str, ParamValue]) -> None:
    """Check that ``params`` gives exactly the statement's parameters.

    Raises:
        QueryParameterError: some are missing or unknown; the message names them all.
    """
    needed = statement.parameters
    missing = [name for name in needed if name not in params]
    unknown = [name for name in params if name not in needed]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f":{n}" for n in sorted(missing)))
        if unknown:
            parts.append("unknown " + ", ".join(f":{n}" for n in sorted(unknown)))
        takes = ", ".join(f":{n}" for n in needed) or "no parameters"
        raise QueryParameterError(
            f"{statement.source}: {'; '.join(parts)} (it takes {takes})", missing, unknown
        )


def sql_literal(value: ParamValue) -> exp.Expression:
    """A value as a sqlglot literal node: strings and dates as string literals (the queries
    CAST them), numbers as numbers, booleans as TRUE/FALSE, None as NULL.

    Raises:
        QueryParameterError: a value of another type.
    """
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        return exp.Literal.string(value.isoformat(sep=" "))
    if isinstance(value, dt.date):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise QueryParameterError(f"unsupported parameter value {value!r} ({type(value).__name__})")


def bind_literals(statement: Statement, params: Mapping[str, ParamValue]) -> exp.Expression:
    """A copy of the statement's tree with every ``:name`` replaced by its value as a literal.

    Raises:
        QueryParameterError: missing/unknown parameters, or an unsupported value.
    """
    check_parameters(statement, params)
    tree = statement.expression.copy()
    for node in list(tree.find_all(exp.Placeholder)):
        node.replace(sql_literal(params[node.this]))
    return tree


def render_literal_sql(
    statement: Statement, params: Mapping[str, ParamValue], dialect: str | None = None
) -> str:
    """The statement in ``dialect`` (default: its own) with the values inlined as literals,
    quoted by sqlglot for that dialect (``'it''s'``; backslashes escaped where the dialect
    treats them as escapes).

    Raises:
        QueryParameterError: see :func:`bind_literals`.
    """
    return bind_literals(statement, params).sql(dialect or statement.dialect, comments=False)


def render_athena(statement: Statement, params: Mapping[str, ParamValue]) -> tuple[str, list[str]]:
    """``(sql, execution_parameters)`` for Athena ``StartQueryExecution``.

    Every occurrence of a parameter becomes a positional ``?``; ``execution_parameters`` has one
    entry per ``?`` in text order, each the value as an Athena SQL literal (``"'web'"``,
    ``"'2024-03-01'"``, ``"10"``), as the ``ExecutionParameters`` field expects. The SQL is
    transpiled to Athena when the statement's dialect differs. An empty list means no
    parameters (omit ``ExecutionParameters``: the API rejects an empty list).

    Raises:
        QueryParameterError: see :func:`bind_literals`.
    """
    check_parameters(statement, params)
    literals = {name: sql_literal(value).sql("athena") for name, value in params.items()}
    order: list[str] = []

    def positional(name: str) -> str:
        order.append(literals[name])
        return "?"

    return _render_placeholders(statement.expression, "athena", positional), order


def render_redshift(
    statement: Statement, params: Mapping[str, ParamValue]
) -> tuple[str, list[dict[str, str]]]:
    """``(sql, parameters)`` for the Redshift Data API ``ExecuteStatement``.

    The SQL keeps ``:name`` (transpiled to Redshift when the statement's dialect differs);
    ``parameters`` is ``[{"name": "app_id", "value": "web"}, ...]``, one per name, in the order
    of first appearance. Values are strings (Redshift converts them to the expected type):
    booleans ``true``/``false``, dates ISO ``YYYY-MM-DD``.

    Raises:
        QueryParameterError: see :func:`bind_literals`; also a None or empty value, which the
            Data API cannot carry (its values are non-empty strings).
    """
    check_parameters(statement, params)
    sql = _render_placeholders(statement.expression, "redshift", lambda name: f":{name}")
    values = []
    for name in statement.parameters:
        value = params[name]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dt.datetime):
            text = value.isoformat(sep=" ")
        elif isinstance(value, dt.date):
            text = value.isoformat()
        elif value is None or isinstance(value, str | int | float | Decimal):
            text = "" if value is None else str(value)
        else:
            raise QueryParameterError(f"unsupported parameter value {value!r} for :{name}")
        if not text:
            raise QueryParameterError(
                f":{name}: the Redshift Data API cannot send a NULL or empty value"
            )
        values.append({"name": name, "value": text})
    return sql, values


def prepare(engine: str, statement: Statement, params: Mapping[str, ParamValue]) -> Prepared:
    """Bind ``params`` the way ``engine`` (a key of :data:`ENGINES`) takes them.

    Raises:
        ValueError: unknown engine.
        QueryParameterError: missing/unknown parameters or a bad value.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    target = ENGINES[engine]
    if target.binding == "athena":
        sql, values = render_athena(statement, params)
        return Prepared(sql, values)
    if target.binding == "redshift":
        sql, named = render_redshift(statement, params)
        return Prepared(sql, named)
    return Prepared(render_literal_sql(statement, params, target.target_dialect), None)


def _render_placeholders(tree: exp.Expression, dialect: str, render) -> str:
    """Generate ``tree`` in ``dialect`` and write each ``:name`` occurrence as ``render(name)``,
    called in text order. (sqlglot writes named placeholders its own way per dialect, e.g.
    ``%(name)s`` for Redshift, and walks trees in no text order, so each placeholder is
    generated as a unique marker first and the markers are replaced in the generated text.)"""
    copy = tree.copy()
    names = []
    for i, node in enumerate(list(copy.find_all(exp.Placeholder))):
        names.append(node.this)
        node.replace(exp.var(f"{_SENTINEL}{i}__"))
    text = copy.sql(dialect, comments=False)
    return _SENTINEL_RE.sub(lambda m: render(names[int(m.group(1))]), text)


def _placeholders_in_text_order(tree: exp.Expression, dialect: str) -> list[str]:
    """Every ``:name`` occurrence (repeats included) in the order of the generated text."""
    names: list[str] = []
    _render_placeholders(tree, dialect, lambda name: names.append(name) or "")
    return names
