"""Any report table as CSV or Excel (`format=csv|xlsx`): rows are streamed from a generator,
so a large table never sits in memory as a whole. Libraries do the formats: csv, openpyxl.

Nothing is sent before the input is known to be good. The format is checked here; a row
source checks its own parameters (store code, period) when it is called, before it returns
its generator (kpis.bill_rows), because the generator only runs once the response has begun,
in a new database session (the request's is closed when the view returns, so a row fetched
here could not be continued there). An Excel file is built whole before it is sent
(openpyxl writes the zip at the end anyway), so any failure is an ordinary error response. A
CSV failing mid-stream is logged and re-raised: the server then drops the connection before
the chunked body's last chunk, so the client sees a broken download, never a short file
that looks complete."""
import csv
import io
import logging
import re
from datetime import datetime

from flask import Response, stream_with_context
from flask_babel import gettext as _

from ..core.timeutil import local_today, zone
from ..errors import Invalid

log = logging.getLogger(__name__)

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


def _xlsx(header, rows, title) -> bytes:
    from openpyxl import Workbook  # imported on first use: it costs a worker ~0.1 s at boot
    book = Workbook(write_only=True)  # rows go straight to the zip stream, not into a sheet in memory
    sheet = book.create_sheet(title=title[:31])
    sheet.append([_cell(h) for h in header])
    for row in rows:
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _logged(chunks, filename):
    """The CSV's chunks; a failure after the headers went out is logged, then re-raised to cut
    the connection (a swallowed error would end the body cleanly: a short file that looks whole)."""
    sent = 0
    try:
        for chunk in chunks:
            yield chunk
            sent += 1
    except Exception:
        log.exception("export %s failed after %d lines; the download was cut off", filename, sent)
        raise


def download(fmt: str, name: str, header, rows) -> Response:
    """A report as a file named <name>-<today>.<fmt>; 422 `invalid_format` before anything is sent."""
    if fmt not in FORMATS:
        raise Invalid(_("Choose CSV or Excel."), code="invalid_format", field="format")
    filename = f"{name}-{local_today().isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "xlsx":
        return Response(_xlsx(header, rows, name), mimetype=MIMETYPES[fmt], headers=headers)
    return Response(stream_with_context(_logged(_csv(header, rows), filename)), mimetype=MIMETYPES[fmt],
                    headers=headers)


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
