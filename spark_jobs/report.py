"""The HTML report and the plain-text summary of the lakehouse (``lakehouse report`` / ``demo``).

Reads only small tables: the three DWS tables (one row per app and day, or per app, day and
category), plus two aggregates of the ingest tables (the manifest's record counts per landing
stream and the rejected rows per reason). Everything is collected to pandas and rendered here.

Definitions used in both outputs, per ``app_id``:

- ``days``: distinct ``dt`` with a row in any DWS table; ``first_dt``/``last_dt`` their range;
- ``events``: sum of ``dws_active_users_1d.events``;
- ``users``: sum of ``new_users`` (users first seen in the range; equals the distinct users of
  the range when the range starts at the app's first day);
- ``peak_dau``: largest ``dau``; ``last_mau``: ``mau`` on the app's last ``dt`` of
  ``dws_active_users_1d``;
- ``sessions``: sum of ``dws_conversion_1d.sessions`` (sessions starting in the range);
- ``conversion_rate``: ``sum(sessions_with_purchase) / sum(sessions)`` over the range (not a mean
  of daily rates); None without sessions;
- ``revenue``: sum of ``dws_category_1d.revenue`` (DECIMAL, the app's source currency, so not
  comparable across apps);
- ``rejected_records``: ``etl_ingest_manifest.rejected_rows`` summed over the objects of the
  landing stream named like the app (an unreadable record has no ``app_id``; the stream name is
  the ``app_id`` default of the adapters).

Tables that do not exist yet read as empty, and every section then says "no data".
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import tempfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common.delta_io import read_table
from spark_jobs.quality.validate import StoredCheck, data_docs_uri, latest_checks
from spark_jobs.settings import Settings

log = logging.getLogger("lakehouse")

REPORT_FILE = "index.html"
TOP_CATEGORIES = 10
TOP_REJECT_REASONS = 5

#: footer attribution of the real datasets that ``lakehouse replay`` turns into apps (app_id =
#: dataset name); wording from data/README.md
DATASET_ATTRIBUTIONS: dict[str, str] = {
    "online_retail": (
        'Online Retail: Chen, D., Sain, S. L. & Guo, K. (2012), "Data mining for the online '
        'retail industry", Journal of Database Marketing & Customer Strategy Management '
        "19(3):197-208, doi:10.1057/dbm.2012.17; UCI Machine Learning Repository, dataset 352. "
        "Licensed CC BY 4.0."
    ),
    "rees46": (
        'REES46: "eCommerce behavior data from multi category store" (2019-Oct), '
        "REES46 Marketing Platform / Open CDP."
    ),
    "otto": "OTTO: recsys-dataset session sample, OTTO GmbH & Co KG. Licensed CC BY 4.0.",
}

_FUNNEL_STEPS = (
    ("sessions", "sessions"),
    ("product_view_sessions", "product view"),
    ("add_to_cart_sessions", "add to cart"),
    ("purchase_sessions", "purchase"),
)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; }
.nodata { color: #888; font-style: italic; } .meta, .note { color: #666; font-size: 0.85rem; }
footer { margin-top: 2rem; border-top: 1px solid #ccc; color: #555; font-size: 0.8rem; }
"""


@dataclass
class ReportData:
    """The small pandas frames the report is drawn from.

    Attributes:
        active_users: ``dws_active_users_1d`` rows (``dt`` as ``datetime.date``).
        conversion: ``dws_conversion_1d`` rows.
        category: ``dws_category_1d`` rows (``revenue`` as ``decimal.Decimal``).
        ingest: per landing ``stream``: ``objects``, ``raw_records``, ``ods_rows``,
            ``rejected_rows`` (sums over ``etl_ingest_manifest``).
        reject_reasons: ``reason``, ``rejected_rows`` (from ``ods_clickstream_rejected_di``);
            the most frequent reasons first, ties by reason.
        checks: the newest Great Expectations run of each table's suite (from the
            validation-results store behind Data Docs), by table; empty when none ran.
    """

    active_users: pd.DataFrame
    conversion: pd.DataFrame
    category: pd.DataFrame
    ingest: pd.DataFrame
    reject_reasons: pd.DataFrame
    checks: list[StoredCheck] = field(default_factory=list)


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    pdf = df.toPandas()
    if "dt" in pdf.columns:
        pdf["dt"] = [d if isinstance(d, dt.date) else pd.Timestamp(d).date() for d in pdf["dt"]]
    return pdf


def load_report_data(spark: SparkSession, settings: Settings) -> ReportData:
    """Read the DWS tables and the ingest aggregates into pandas (missing tables read as empty)."""
    active = _to_pandas(read_table(spark, settings, T.DWS_ACTIVE_USERS))
    conversion = _to_pandas(read_table(spark, settings, T.DWS_CONVERSION))
    category = _to_pandas(read_table(spark, settings, T.DWS_CATEGORY))
    category["revenue"] = [Decimal(v) for v in category["revenue"]]
    ingest = (
        read_table(spark, settings, T.INGEST_MANIFEST)
        .groupBy("stream")
        .agg(
            F.count(F.lit(1)).alias("objects"),
            F.sum("raw_records").alias("raw_records"),
            F.sum("ods_rows").alias("ods_rows"),
            F.sum("rejected_rows").alias("rejected_rows"),
        )
        .orderBy("stream")
        .toPandas()
    )
    reasons = (
        read_table(spark, settings, T.ODS_REJECTED)
        .groupBy("reason")
        .agg(F.count(F.lit(1)).alias("rejected_rows"))
        .orderBy(F.desc("rejected_rows"), "reason")
        .toPandas()
    )
    return ReportData(active, conversion, category, ingest, reasons, latest_checks(settings))


_SUMMARY_COLUMNS = [
    "app_id",
    "first_dt",
    "last_dt",
    "days",
    "events",
    "users",
    "peak_dau",
    "last_mau",
    "sessions",
    "sessions_with_purchase",
    "conversion_rate",
    "revenue",
    "rejected_records",
]


def summarise_apps(data: ReportData) -> pd.DataFrame:
    """One row per app with the totals defined in the module docstring.

    Columns: ``app_id``, ``first_dt``, ``last_dt``, ``days``, ``events``, ``users``, ``peak_dau``,
    ``last_mau``, ``sessions``, ``sessions_with_purchase``, ``conversion_rate`` (None without
    sessions), ``revenue`` (Decimal), ``rejected_records``. Apps are the ``app_id`` values of the
    DWS tables plus the landing streams of the manifest, sorted. Values that have no source rows
    are None (``peak_dau``, ``last_mau``, dates) or 0 (counts, revenue).
    """
    au, conv, cat, ing = data.active_users, data.conversion, data.category, data.ingest
    apps = sorted(set(au["app_id"]) | set(conv["app_id"]) | set(cat["app_id"]) | set(ing["stream"]))
    rows = []
    for app in apps:
        a = au[au["app_id"] == app]
        c = conv[conv["app_id"] == app]
        g = cat[cat["app_id"] == app]
        i = ing[ing["stream"] == app]
        dates = set(a["dt"]) | set(c["dt"]) | set(g["dt"])
        sessions = int(c["sessions"].sum())
        converted = int(c["sessions_with_purchase"].sum())
        rows.append(
            {
                "app_id": app,
                "first_dt": min(dates) if dates else None,
                "last_dt": max(dates) if dates else None,
                "days": len(dates),
                "events": int(a["events"].sum()),
                "users": int(a["new_users"].sum()),
                "peak_dau": int(a["dau"].max()) if len(a) else None,
                "last_mau": int(a.sort_values("dt")["mau"].iloc[-1]) if len(a) else None,
                "sessions": sessions,
                "sessions_with_purchase": converted,
                "conversion_rate": converted / sessions if sessions else None,
                "revenue": sum(g["revenue"], Decimal(0)),
                "rejected_records": int(i["rejected_rows"].sum()),
            }
        )
    return pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)


# ---------------------------------------------------------------------------------- formatting


def _fmt_int(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{int(value):,}"


def _fmt_money(value) -> str:
    if value is None:
        return "n/a"
    return f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def _fmt_pct(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.2%}"


def _fmt_date(value) -> str:
    return "n/a" if value is None or pd.isna(value) else value.isoformat()


def _summary_cells(row) -> list[str]:
    return [
        str(row.app_id),
        str(row.days),
        _fmt_int(row.events),
        _fmt_int(row.peak_dau),
        _fmt_int(row.last_mau),
        _fmt_int(row.sessions),
        _fmt_pct(row.conversion_rate),
        _fmt_money(row.revenue),
        _fmt_int(row.rejected_records),
    ]


_SUMMARY_HEADERS = [
    "app_id",
    "days",
    "events",
    "peak DAU",
    "last-day MAU",
    "sessions",
    "conversion",
    "revenue",
    "rejected",
]


def print_summary(spark: SparkSession, settings: Settings) -> None:
    """Print a plain-text table to stdout, one line per app.

    Columns: app_id, days, events, peak DAU, last-day MAU, sessions, conversion (overall session
    conversion rate, %), revenue (source currency, 2 decimals), rejected (records rejected at
    ingest for the app's landing stream). Definitions are in the module docstring. Prints
    ``no data`` when no table has rows.
    """
    summary = summarise_apps(load_report_data(spark, settings))
    print(f"Lakehouse summary ({settings.lakehouse_root})")
    if summary.empty:
        print("no data")
        return
    rows = [_summary_cells(r) for r in summary.itertuples(index=False)]
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(_SUMMARY_HEADERS)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    print(line(_SUMMARY_HEADERS))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print("revenue is in each app's source currency; conversion = sessions with a purchase / all")


# ---------------------------------------------------------------------------------------- HTML


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """An HTML table; cells from column ``numeric_from`` on are right-aligned. Text is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(c)}</td>'
            if k >= numeric_from
            else f"<td>{html.escape(c)}</td>"
            for k, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_NO_DATA = '<p class="nodata">no data</p>'


def _figure_html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(margin={"l": 40, "r": 20, "t": 50, "b": 40}, height=360)
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False}
    )


def _active_users_chart(au: pd.DataFrame, app: str, div_id: str) -> str:
    a = au[au["app_id"] == app].sort_values("dt")
    if a.empty:
        return _NO_DATA
    x = [d.isoformat() for d in a["dt"]]
    fig = go.Figure()
    for col, name in (("dau", "DAU"), ("wau", "WAU (7 days)"), ("mau", "MAU (30 days)")):
        fig.add_trace(go.Scatter(x=x, y=[int(v) for v in a[col]], mode="lines+markers", name=name))
    fig.update_layout(title=f"{app}: active users", xaxis_title="dt (UTC)", yaxis_title="users")
    return _figure_html(fig, div_id)


def _funnel_chart(conv: pd.DataFrame, app: str, div_id: str) -> str:
    c = conv[conv["app_id"] == app]
    if c.empty:
        return _NO_DATA
    values = [int(c[col].sum()) for col, _ in _FUNNEL_STEPS]
    if values[0] and not (values[1] or values[2]):
        # e.g. Online Retail: invoice lines only, so every session is a purchase-only session
        return (
            f'<p class="nodata">{app}: no funnel to show: the dataset has no product views or '
            f"add-to-cart events, only purchases ({values[0]:,} sessions, "
            f"{int(c['sessions_with_purchase'].sum()):,} with a purchase)</p>"
        )
    fig = go.Figure(
        go.Funnel(
            y=[label for _, label in _FUNNEL_STEPS], x=values, textinfo="value+percent initial"
        )
    )
    first, last = min(c["dt"]).isoformat(), max(c["dt"]).isoformat()
    fig.update_layout(title=f"{app}: ordered session funnel, {first} .. {last}")
    return _figure_html(fig, div_id)


def _category_chart(cat: pd.DataFrame, app: str, div_id: str) -> str:
    g = cat[cat["app_id"] == app]
    if g.empty:
        return _NO_DATA
    by_cat = {}
    for category, revenue in zip(g["category"], g["revenue"], strict=True):
        by_cat[category] = by_cat.get(category, Decimal(0)) + revenue
    top = sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CATEGORIES]
    top.reverse()  # largest at the top of a horizontal bar chart
    fig = go.Figure(
        go.Bar(
            x=[float(v) for _, v in top],
            y=[k for k, _ in top],
            orientation="h",
            text=[_fmt_money(v) for _, v in top],
        )
    )
    fig.update_layout(
        title=f"{app}: top {TOP_CATEGORIES} categories by revenue", xaxis_title="revenue"
    )
    return _figure_html(fig, div_id)


def _totals_section(summary: pd.DataFrame) -> str:
    if summary.empty:
        return _NO_DATA
    headers = [
        "app_id",
        "first dt",
        "last dt",
        "days",
        "events",
        "users",
        "sessions",
        "conversion",
        "revenue",
    ]
    rows = [
        [
            str(r.app_id),
            _fmt_date(r.first_dt),
            _fmt_date(r.last_dt),
            str(r.days),
            _fmt_int(r.events),
            _fmt_int(r.users),
            _fmt_int(r.sessions),
            _fmt_pct(r.conversion_rate),
            _fmt_money(r.revenue),
        ]
        for r in summary.itertuples(index=False)
    ]
    note = (
        '<p class="note">users = users first seen in the range (sum of new_users); revenue in '
        "each app's source currency; conversion = sessions with a purchase / sessions.</p>"
    )
    return _table(headers, rows, numeric_from=3) + note


def _quality_section(data: ReportData) -> str:
    ing = data.ingest
    parts = []
    if ing.empty:
        parts.append("<h3>Ingested objects</h3>" + _NO_DATA)
    else:
        rows = [
            [
                str(r.stream),
                _fmt_int(r.objects),
                _fmt_int(r.raw_records),
                _fmt_int(r.ods_rows),
                _fmt_int(r.rejected_rows),
                _fmt_pct(r.rejected_rows / r.raw_records if r.raw_records else None),
            ]
            for r in ing.itertuples(index=False)
        ]
        totals = ing[["objects", "raw_records", "ods_rows", "rejected_rows"]].sum()
        raw = int(totals["raw_records"])
        rows.append(
            ["all"]
            + [_fmt_int(totals[c]) for c in ("objects", "raw_records", "ods_rows", "rejected_rows")]
            + [_fmt_pct(int(totals["rejected_rows"]) / raw if raw else None)]
        )
        headers = ["stream", "objects", "raw records", "ODS rows", "rejected rows", "rejected %"]
        parts.append("<h3>Ingested objects</h3>" + _table(headers, rows))
    reasons = data.reject_reasons
    parts.append(f"<h3>Rejected rows by reason (top {TOP_REJECT_REASONS})</h3>")
    if reasons.empty:
        parts.append(_NO_DATA)
    else:
        total = int(reasons["rejected_rows"].sum())
        rows = [
            [str(r.reason), _fmt_int(r.rejected_rows), _fmt_pct(r.rejected_rows / total)]
            for r in reasons.head(TOP_REJECT_REASONS).itertuples(index=False)
        ]
        parts.append(_table(["reason", "rejected rows", "share of rejected"], rows))
    return "".join(parts)


def _checks_section(checks: list[StoredCheck], docs_index: str) -> str:
    """The newest check of each table, then every warning-level failure among them."""
    if not checks:
        return "<h3>Latest checks</h3>" + _NO_DATA
    rows = []
    for check in checks:
        blocking = len(check.failures) - len(check.warnings)
        result = "FAIL" if blocking else "PASS"
        rows.append(
            [
                check.table,
                f"{check.run_time:%Y-%m-%d %H:%M}",
                check.label,
                result,
                _fmt_int(blocking),
                _fmt_int(len(check.warnings)),
            ]
        )
    headers = ["table", "checked (UTC)", "what", "result", "failed", "warnings"]
    parts = ["<h3>Latest checks</h3>", _table(headers, rows, numeric_from=4)]
    warnings = [(c.table, w) for c in checks for w in c.warnings]
    parts.append("<h3>Warnings (not blocking)</h3>")
    if not warnings:
        parts.append('<p class="note">none in the latest checks</p>')
    else:
        rows = [
            [
                table,
                w.type,
                ", ".join(w.columns),
                w.description or "",
                _fmt_int(w.unexpected_count) if w.unexpected_count is not None else "",
            ]
            for table, w in warnings
        ]
        headers = ["table", "expectation", "columns", "rule", "unexpected rows"]
        parts.append(_table(headers, rows, numeric_from=4))
    link = html.escape(docs_index)
    parts.append(f'<p class="note">Every run in full: <a href="{link}">Data Docs</a>.</p>')
    return "".join(parts)


def render_report(data: ReportData, settings: Settings, generated_at: dt.datetime) -> str:
    """The whole report as one HTML document with plotly.js inline (opens offline)."""
    summary = summarise_apps(data)
    apps = list(summary["app_id"])
    sections = [
        "<h2>Per app totals</h2>",
        _totals_section(summary),
        "<h2>Data quality</h2>",
        _quality_section(data),
        _checks_section(data.checks, data_docs_uri(settings) + "/index.html"),
    ]
    for k, app in enumerate(apps):
        sections.append(f"<h2>{html.escape(str(app))}</h2>")
        sections.append(_active_users_chart(data.active_users, app, f"app{k}-active-users"))
        sections.append(_funnel_chart(data.conversion, app, f"app{k}-funnel"))
        sections.append(_category_chart(data.category, app, f"app{k}-categories"))
    credits = [DATASET_ATTRIBUTIONS[a] for a in apps if a in DATASET_ATTRIBUTIONS]
    footer = "".join(f"<p>{html.escape(c)}</p>" for c in credits)
    title = "Clickstream lakehouse report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{title}</h1>"
        f'<p class="meta">Lakehouse root {html.escape(settings.lakehouse_root)}; generated '
        f"{generated_at:%Y-%m-%d %H:%M} UTC; dates are UTC.</p>"
        + "".join(sections)
        + f"<footer><p>Data sources:</p>{footer or '<p>no attributed datasets shown</p>'}"
        "</footer></body></html>\n"
    )


def report_path(settings: Settings) -> Path:
    """Where :func:`write_report` writes.

    ``<lakehouse_root>/reports/index.html`` for a local root (a plain path or ``file:`` URI). For a
    remote root (``s3a://`` ...) the report is a local file, ``./reports/index.html`` under the
    current directory: the report is for a browser, and nothing is uploaded.
    """
    root = settings.lakehouse_root
    if root.startswith("file:"):
        root = root[len("file:") :].lstrip("/")
        root = "/" + root
    elif "://" in root:
        return Path.cwd() / "reports" / REPORT_FILE
    return Path(root) / "reports" / REPORT_FILE


def write_report(spark: SparkSession, settings: Settings) -> Path:
    """Write the self-contained HTML report and return its path (see :func:`report_path`).

    Contents: per app totals; data quality (ingested objects and record counts per stream, ODS
    rows, the top 5 rejection reasons, the newest check of each table with its warning-level
    failures, a link to Data Docs); per app a DAU/WAU/MAU line chart, the ordered session
    funnel summed over the range and the top 10 categories by revenue; dataset attributions in the
    footer. plotly.js is embedded, so the file opens offline. The file is replaced atomically.
    """
    data = load_report_data(spark, settings)
    page = render_report(data, settings, dt.datetime.now(dt.UTC))
    path = report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".index-", suffix=".html")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("REPORT %s", path)
    return path
