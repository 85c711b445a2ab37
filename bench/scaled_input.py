"""The Online Retail year replicated N times: the scale benchmark's input (issue 9).

Copy ``k`` (0..N-1) of every source row is the same row with

- ``CustomerID`` + ``k * CUSTOMER_ID_STRIDE`` (written as the source writes it, ``17850.0`` ->
  ``117850.0``; an empty CustomerID stays empty, a guest stays a guest), so the copies' users are
  disjoint;
- ``InvoiceDate`` + ``k`` minutes (local time, as in the source);
- every other column as it is (cancellations ``C…``, bad-debt adjustments ``A…`` with negative
  prices, zero and negative quantities, exact duplicate lines: every quirk is kept).

Copy 0 is the source itself. The copies of a day are written to that day's file (copy-major), so
``lakehouse replay online_retail --data-dir <out>`` reads them as it reads the real year.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

#: added to a copy's CustomerIDs per copy (the source's ids are 12346..18287)
CUSTOMER_ID_STRIDE = 100_000


@dataclass(frozen=True)
class ScaledInput:
    """What :func:`build_scaled_online_retail` wrote: the data dir (holding ``online_retail/``),
    the number of copies and of rows (header lines excluded)."""

    data_dir: Path
    copies: int
    rows: int


def build_scaled_online_retail(
    source_dir: Path,
    out_dir: Path,
    copies: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> ScaledInput:
    """Write ``copies`` copies of the Online Retail day files (``source_dir/online_retail``;
    only the files of local days ``[start, end]`` when given) to ``out_dir/online_retail``.

    Streams one row at a time (memory: one row and the per-file caches).

    Raises:
        ValueError: ``copies`` < 1 or the id stride is too small for the source's ids.
        FileNotFoundError: no source files.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    files = sorted((source_dir / "online_retail").glob("*.csv.gz"))
    if start or end:
        first, last = start or dt.date.min, end or dt.date.max
        files = [f for f in files if first <= dt.date.fromisoformat(f.name[:10]) <= last]
    if not files:
        raise FileNotFoundError(f"no Online Retail files under {source_dir}")
    target = out_dir / "online_retail"
    target.mkdir(parents=True, exist_ok=True)
    rows = 0
    for path in files:
        shifted: dict[str, list[str]] = {}
        customers: dict[str, list[str]] = {}
        with (
            gzip.open(path, "rt", encoding="utf-8", newline="") as source,
            gzip.open(
                target / path.name, "wt", encoding="utf-8", newline="", compresslevel=1
            ) as out,
        ):
            reader = csv.reader(source)
            writer = csv.writer(out, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            i_date, i_customer = header.index("InvoiceDate"), header.index("CustomerID")
            body = list(reader)  # one day file (a few thousand rows)
            for copy in range(copies):
                for row in body:
                    local, customer = row[i_date], row[i_customer]
                    if local not in shifted:
                        ts = dt.datetime.strptime(local, "%Y-%m-%d %H:%M:%S")
                        shifted[local] = [local] + [
                            f"{ts + dt.timedelta(minutes=k):%Y-%m-%d %H:%M:%S}"
                            for k in range(1, copies)
                        ]
                    if customer not in customers:
                        customers[customer] = _customer_copies(customer, copies)
                    out_row = list(row)
                    out_row[i_date] = shifted[local][copy]
                    out_row[i_customer] = customers[customer][copy]
                    writer.writerow(out_row)
            rows += len(body) * copies
    return ScaledInput(out_dir, copies, rows)


def _customer_copies(customer: str, copies: int) -> list[str]:
    """The CustomerID text of each copy (``""`` stays ``""``; ``17850.0`` -> ``117850.0``)."""
    text = customer.strip()
    if not text:
        return [customer] * copies
    number = float(text)
    if number >= CUSTOMER_ID_STRIDE:
        raise ValueError(f"CustomerID {customer!r} >= stride {CUSTOMER_ID_STRIDE}")
    return [customer] + [repr(number + k * CUSTOMER_ID_STRIDE) for k in range(1, copies)]
