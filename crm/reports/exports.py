"""Any report table as CSV or Excel (`format=csv|xlsx`): rows are streamed from a generator,
so a large table never sits in memory as a whole. Libraries do the formats: csv, openpyxl."""
import csv
import io
import re
from datetime import datetime

from flask import Response, stream_with_context
from openpyxl import Workbook

from ..core.timeutil import local_today, zone

FORMATS = ("csv", "xlsx")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")  # "-600.00" is a figure, not a formula
MIMETYPES = {"csv": "text/csv",  # Flask adds "; charset=utf-8"
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def write(self, text):
        return text


def _cell(value):
    """A value as a spreadsheet should hold it: times in the chain's zone as text (Excel has no
    time zones), and text that a spreadsheet would run as a formula quoted."""
    if isinstance(value, datetime):
        return value.astimezone(zone()).strftime("%Y-%m-%d %H:%M:%S") if value.tzinfo else value.isoformat(" ")
    if isinstance(value, str) and value[:1] in _FORMULA and not _NUMBER.match(value):
        return "'" + value
    return value


def _csv(header, rows):
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow([_cell(h) for h in header])  # the BOM lets Excel open UTF-8 Chinese text
    for row in rows:
        yield writer.writerow([_cell(v) for v in row])


def _xlsx(header, rows, title):
    book = Workbook(write_only=True)  # rows go straight to the zip stream, not into a sheet in memory
    sheet = book.create_sheet(title=title[:31])
    sheet.append([_cell(h) for h in header])
    for row in rows:
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    yield out.getvalue()


def download(fmt: str, name: str, header, rows) -> Response:
    """A report as a file named <name>-<today>.<fmt>."""
    body = _csv(header, rows) if fmt == "csv" else _xlsx(header, rows, name)
    filename = f"{name}-{local_today().isoformat()}.{fmt}"
    return Response(stream_with_context(body), mimetype=MIMETYPES[fmt],
                     headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def key_value_rows(figures: dict):
    """A flat report (KPIs, room figures) as field/value rows."""
    return ((key, "" if value is None else value) for key, value in figures.items())


def _flat(prefix, value, out):
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = value
    return out


def table(rows: list[dict]):
    """(header, rows) of a list of nested dicts, columns named "this_year.nights"."""
    flat = [_flat("", row, {}) for row in rows]
    header = list(dict.fromkeys(key for row in flat for key in row))
    return header, ([("" if row.get(k) is None else row.get(k)) for k in header] for row in flat)
