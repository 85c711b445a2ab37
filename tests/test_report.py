"""The HTML report and the plain-text summary, over tiny DWS and ingest tables written by hand.

Every expected number below is worked out by hand from the rows in this file (see the comments),
never read back from :mod:`spark_jobs.report`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.common.delta_io import replace_partitions
from spark_jobs.common.schemas import SCHEMAS
from spark_jobs.report import print_summary, report_path, write_report
from spark_jobs.settings import Settings

pytestmark = pytest.mark.spark

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
INGEST_TS = dt.datetime(2024, 1, 4, 1, 0, 0)

# (app_id, events, dau, wau, mau, new_users, dau_mau_ratio, dt)
ACTIVE_USERS = [
    ("online_retail", 10, 3, 3, 3, 3, 1.0, D1),
    ("online_retail", 6, 2, 4, 4, 1, 0.5, D2),
    ("online_retail", 8, 4, 5, 5, 1, 0.8, D3),
    ("rees46", 100, 40, 40, 40, 40, 1.0, D2),
    ("rees46", 50, 30, 55, 55, 15, 30 / 55, D3),
]
# online_retail: events 10+6+8 = 24, peak DAU 4 (D3), MAU on its last day D3 = 5
# rees46: events 100+50 = 150, peak DAU 40 (D2), MAU on its last day D3 = 55

# (app_id, sessions, product_view, add_to_cart, purchase, sessions_with_purchase, rate, dt)
CONVERSION = [
    ("online_retail", 4, 3, 2, 1, 1, 0.25, D1),
    ("online_retail", 2, 2, 1, 1, 2, 1.0, D2),
    ("online_retail", 5, 4, 2, 0, 0, 0.0, D3),
    ("rees46", 50, 40, 10, 4, 5, 0.1, D2),
    ("rees46", 30, 20, 6, 2, 2, 2 / 30, D3),
]
# online_retail: sessions 4+2+5 = 11, with purchase 1+2+0 = 3 -> 3/11 = 27.27 %
# rees46: sessions 50+30 = 80, with purchase 5+2 = 7 -> 7/80 = 8.75 %

# (app_id, category, product_views, add_to_carts, purchases, revenue, sessions, dt)
CATEGORY = [
    ("online_retail", "home", 5, 2, 2, Decimal("100.5000"), 3, D1),
    ("online_retail", "toys", 2, 1, 1, Decimal("20.2500"), 1, D1),
    ("online_retail", "home", 1, 1, 1, Decimal("10.0000"), 1, D2),
    ("online_retail", "garden", 3, 1, 1, Decimal("1234.5678"), 2, D3),
    ("rees46", "electronics.smartphone", 30, 8, 3, Decimal("999.9900"), 25, D2),
    ("rees46", "electronics.smartphone", 20, 5, 2, Decimal("500.0050"), 15, D3),
    ("rees46", "apparel", 4, 0, 0, Decimal("0.0000"), 4, D3),
] + [
    # shop3: 11 categories cat01..cat11 with revenue 1..11 on D3; only cat01 is outside the top 10
    ("shop3", f"cat{k:02d}", 1, 1, 1, Decimal(k), 1, D3)
    for k in range(1, 12)
]
# online_retail revenue 100.50 + 20.25 + 10.00 + 1234.5678 = 1365.3178 -> "1,365.32"
# rees46 revenue 999.99 + 500.005 + 0 = 1499.995 -> rounded half up "1,500.00"
# shop3 revenue 1 + 2 + ... + 11 = 66 -> "66.00"

# (object, stream, raw_records, ods_rows, rejected_rows)
MANIFEST = [
    ("s3://landing/online_retail-a.gz", "online_retail", 15, 12, 3),
    ("s3://landing/online_retail-b.gz", "online_retail", 10, 8, 2),
    ("s3://landing/rees46-a.gz", "rees46", 13, 10, 3),
]
# rejected per stream: online_retail 3+2 = 5, rees46 3; raw 15+10+13 = 38, ODS 12+8+10 = 30

# reasons of the 8 rejected rows: "bad json" x3 and five reasons once each (ties by name)
REJECTED_REASONS = [
    "bad json",
    "bad json",
    "bad json",
    "missing user",
    "negative price",
    "unknown schema",
    "bad timestamp",
    "truncated object",
]
# top 5: bad json (3), bad timestamp, missing user, negative price, truncated object;
# "unknown schema" is 6th alphabetically among the ties and left out


def _write(spark, settings, table, rows, start=D1, end=D3):
    df = spark.createDataFrame(rows, SCHEMAS[table])
    replace_partitions(df, settings, table, start, end)


def _write_ingest(spark, settings):
    manifest = [
        (obj, stream, "firehose", "canonical", 1000, raw, ods, rej, [D1], [stream], INGEST_TS, D3)
        for obj, stream, raw, ods, rej in MANIFEST
    ]
    _write(spark, settings, T.INGEST_MANIFEST, manifest)
    streams = ["online_retail"] * 5 + ["rees46"] * 3
    rejected = [
        ("{oops", f"s3://landing/{s}-x.gz", k, "canonical", reason, INGEST_TS, D3)
        for k, (s, reason) in enumerate(zip(streams, REJECTED_REASONS, strict=True))
    ]
    _write(spark, settings, T.ODS_REJECTED, rejected)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Settings of a lake holding the hand-written tables above (written once per module)."""
    settings = replace(
        Settings(spark_master="local[2]", shuffle_partitions=2),
        lakehouse_root=str(tmp_path_factory.mktemp("report") / "lake"),
    )
    _write(spark, settings, T.DWS_ACTIVE_USERS, ACTIVE_USERS)
    _write(spark, settings, T.DWS_CONVERSION, CONVERSION)
    _write(spark, settings, T.DWS_CATEGORY, CATEGORY)
    _write_ingest(spark, settings)
    return settings


@pytest.fixture(scope="module")
def page(spark, lake) -> str:
    """The report written from :func:`lake`, as text."""
    return write_report(spark, lake).read_text(encoding="utf-8")


def test_report_is_one_self_contained_html_file_under_the_lake(spark, lake, page):
    path = Path(lake.lakehouse_root) / "reports" / "index.html"

    assert path.read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>")
    assert re.search(r"plotly\.js v\d+\.\d+", page), "plotly.js must be embedded"
    script_tags = re.findall(r"<script\b[^>]*>", page)
    assert script_tags and not [tag for tag in script_tags if "src=" in tag]
    assert not re.search(r"""<(?:link|img|iframe)\b[^>]*(?:href|src)=["']?https?:""", page)


def test_report_shows_hand_computed_totals_per_app(page):
    for app in ("online_retail", "rees46", "shop3"):
        assert f"<h2>{app}</h2>" in page
    totals = page[page.index("Per app totals") : page.index("Data quality")]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", totals)
    # app, first dt, last dt, days, events, users (sum of new_users), sessions, conversion, revenue
    assert cells[0:9] == [
        "online_retail",
        "2024-01-01",
        "2024-01-03",
        "3",
        "24",
        "5",  # 3 + 1 + 1
        "11",
        "27.27%",
        "1,365.32",
    ]
    assert cells[9:18] == [
        "rees46",
        "2024-01-02",
        "2024-01-03",
        "2",
        "150",
        "55",  # 40 + 15
        "80",
        "8.75%",
        "1,500.00",
    ]
    assert cells[18:27] == ["shop3", "2024-01-03", "2024-01-03", "1", "0", "0", "0", "n/a", "66.00"]


def test_report_data_quality_counts_streams_and_top_five_reasons(page):
    quality = page[page.index("Data quality") : page.index("<h2>online_retail</h2>")]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in re.findall(r"<tr>.*?</tr>", quality)]
    rows = [r for r in rows if r]
    # stream, objects, raw records, ODS rows, rejected rows, rejected % (5/25, 3/13, 8/38)
    assert rows[0] == ["online_retail", "2", "25", "20", "5", "20.00%"]
    assert rows[1] == ["rees46", "1", "13", "10", "3", "23.08%"]
    assert rows[2] == ["all", "3", "38", "30", "8", "21.05%"]
    # reason, rejected rows, share of the 8 rejected rows
    assert rows[3:] == [
        ["bad json", "3", "37.50%"],
        ["bad timestamp", "1", "12.50%"],
        ["missing user", "1", "12.50%"],
        ["negative price", "1", "12.50%"],
        ["truncated object", "1", "12.50%"],
    ]


def test_report_charts_per_app_and_missing_data_says_no_data(page):
    online_retail = page[page.index("<h2>online_retail</h2>") : page.index("<h2>rees46</h2>")]
    for div in ("app0-active-users", "app0-funnel", "app0-categories"):
        assert f'id="{div}"' in online_retail
    assert '"DAU"' in online_retail and '"MAU (30 days)"' in online_retail
    assert '"add to cart"' in online_retail
    shop3 = page[page.index("<h2>shop3</h2>") : page.index("<footer>")]
    # shop3 has categories only: no active users, no sessions
    assert shop3.count('class="nodata">no data<') == 2
    assert '"cat02"' in shop3 and '"cat11"' in shop3
    assert '"cat01"' not in shop3  # 11th by revenue, outside the top 10


def test_report_footer_attributes_the_real_datasets(page):
    footer = page[page.index("<footer>") :]
    assert "Chen, D., Sain, S. L. &amp; Guo, K. (2012)" in footer
    assert "CC BY 4.0" in footer
    assert "REES46 Marketing Platform / Open CDP" in footer


def test_summary_prints_hand_computed_numbers(spark, lake, capsys):
    print_summary(spark, lake)

    lines = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split() for line in lines if line.split()}
    # app, days, events, peak DAU, last-day MAU, sessions, conversion, revenue, rejected
    assert table["online_retail"] == [
        "online_retail",
        "3",
        "24",
        "4",
        "5",
        "11",
        "27.27%",
        "1,365.32",
        "5",
    ]
    assert table["rees46"] == ["rees46", "2", "150", "40", "55", "80", "8.75%", "1,500.00", "3"]
    assert table["shop3"] == ["shop3", "1", "0", "n/a", "n/a", "0", "n/a", "66.00", "0"]


def test_empty_lake_reports_no_data(spark, settings, capsys):
    page = write_report(spark, settings).read_text(encoding="utf-8")
    print_summary(spark, settings)

    # totals, ingested objects, reasons, latest checks
    assert page.count('class="nodata">no data<') == 4
    assert "no attributed datasets shown" in page
    assert capsys.readouterr().out.splitlines()[-1] == "no data"


def test_rerun_replaces_the_report(spark, settings):
    _write(spark, settings, T.DWS_CATEGORY, CATEGORY)
    first = write_report(spark, settings)
    assert "1,365.32" in first.read_text(encoding="utf-8")
    _write(spark, settings, T.DWS_CATEGORY, [CATEGORY[0]])  # only 100.50 of revenue left
    second = write_report(spark, settings)

    assert first == second
    page = second.read_text(encoding="utf-8")
    assert "1,365.32" not in page and "100.50" in page
    assert [p.name for p in second.parent.iterdir()] == ["index.html"]


def test_remote_root_writes_the_report_under_the_working_directory(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    remote = replace(settings, lakehouse_root="s3a://bucket/lake")
    file_uri = replace(settings, lakehouse_root=f"file://{tmp_path}/lake")

    assert report_path(remote) == tmp_path / "reports" / "index.html"
    assert report_path(file_uri) == tmp_path / "lake" / "reports" / "index.html"


def test_funnel_of_a_purchase_only_dataset_says_it_has_no_views_or_carts():
    import pandas as pd

    from spark_jobs.report import _funnel_chart

    # two days of an invoice-only app: 5 + 3 sessions, every one with a purchase
    conv = pd.DataFrame(
        {
            "app_id": ["online_retail"] * 2,
            "dt": [dt.date(2011, 1, 4), dt.date(2011, 1, 5)],
            "sessions": [5, 3],
            "product_view_sessions": [0, 0],
            "add_to_cart_sessions": [0, 0],
            "purchase_sessions": [0, 0],
            "sessions_with_purchase": [5, 3],
        }
    )
    html = _funnel_chart(conv, "online_retail", "f")
    assert "no product views or add-to-cart events, only purchases" in html
    assert "(8 sessions, 8 with a purchase)" in html
    assert "plotly" not in html.lower()


def _rows_df(spark, table: str, rows: list[dict]):
    schema = SCHEMAS[table]
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)


def test_report_lists_the_newest_check_per_table_and_its_warnings(spark, settings):
    """Two checks by hand: an ODS batch with a duplicated event_id (critical), then a newer ODS
    batch with one negative price (warning only). The report shows the newest check of the table:
    passed, with the one warning."""
    import copy

    from spark_jobs.quality.validate import validate_dataframe
    from tests.quality.conftest import GOOD_ROWS

    ods = copy.deepcopy(GOOD_ROWS[T.ODS_EVENTS])
    duplicated = _rows_df(spark, T.ODS_EVENTS, [*ods, ods[0]])
    assert not validate_dataframe(duplicated, T.ODS_EVENTS, settings, "first batch").success
    ods[1]["price"] = Decimal("-11062.0600")  # an Online Retail bad-debt line
    validate_dataframe(_rows_df(spark, T.ODS_EVENTS, ods), T.ODS_EVENTS, settings, "second batch")

    page = write_report(spark, settings).read_text(encoding="utf-8")
    checks = page.split("<h3>Latest checks</h3>")[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", checks)]
    # table, checked, what, result, failed, warnings (the checked time is left out)
    assert [[r[0], *r[2:]] for r in rows if r] == [
        [T.ODS_EVENTS, "second batch", "PASS", "0", "1"],
    ]
    warnings = page.split("<h3>Warnings (not blocking)</h3>")[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", warnings)
    assert cells[:3] == [T.ODS_EVENTS, "expect_column_values_to_be_between", "price"]
    assert cells[-1] == "1"  # one negative price among the batch's rows
    assert "data_docs/index.html" in page
