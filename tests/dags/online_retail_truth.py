"""Expected DWS values of one Online Retail day, computed straight from the source CSV.

This does not use any project code: it reads ``data/online_retail/<day>.csv.gz`` with the csv
module and applies the definitions written in the dataset's documentation (replay mapping) and in
the DWS/DWD docstrings (UTC days, 30-minute session gap, 24-hour session cap, purchases =
positive quantities of non-cancelled invoices, revenue = price * quantity of purchases).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
SESSION_GAP = dt.timedelta(minutes=30)
SESSION_CAP = dt.timedelta(hours=24)


@dataclass(frozen=True)
class DayTruth:
    """The values one day's DWS rows must have when the lake holds only that day."""

    events: int
    users: int
    sessions: int
    sessions_with_purchase: int
    purchases: int
    revenue: Decimal


def _rows(data_dir: Path, day: dt.date):
    for offset in (-1, 0, 1):  # files are named by London trading day
        path = data_dir / "online_retail" / f"{day + dt.timedelta(days=offset)}.csv.gz"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
                yield from csv.DictReader(handle)


def day_truth(data_dir: Path, day: dt.date) -> DayTruth:
    """Count one UTC day of Online Retail by hand (see module docstring)."""
    events = 0
    purchases = 0
    revenue = Decimal(0)
    by_user: dict[str, list[tuple[dt.datetime, bool]]] = {}
    for row in _rows(data_dir, day):
        local = dt.datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
        utc = local.replace(tzinfo=LONDON).astimezone(dt.UTC)
        if utc.date() != day:
            continue
        events += 1
        is_purchase = not row["InvoiceNo"].startswith(("C", "A")) and int(row["Quantity"]) > 0
        if is_purchase:
            purchases += 1
            revenue += Decimal(row["UnitPrice"]) * int(row["Quantity"])
        if row["CustomerID"].strip():
            user = str(int(float(row["CustomerID"])))
            by_user.setdefault(user, []).append((utc, is_purchase))
    sessions = 0
    with_purchase = 0
    for visits in by_user.values():
        visits.sort()
        start = previous = None
        bought = False
        for at, is_purchase in visits:
            if start is None or at - previous > SESSION_GAP or at - start >= SESSION_CAP:
                if start is not None:
                    with_purchase += bought
                sessions += 1
                start, bought = at, False
            bought = bought or is_purchase
            previous = at
        with_purchase += bought
    return DayTruth(events, len(by_user), sessions, with_purchase, purchases, revenue)
