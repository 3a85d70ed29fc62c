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
that looks complete.

Excel cells are typed: money (figures.Money) is a number formatted '#,##0.00', a rate
(figures.Rate, per cent) the fraction formatted '0.00%', a time a date-time, so SUM and
charts work on them; CSV holds the same figures as the JSON writes them."""
import csv
import io
import logging
import re
from datetime import date, datetime
from decimal import Decimal

from flask import Response, stream_with_context
from flask_babel import gettext as _

from ..core.timeutil import local_today, zone
from ..errors import Invalid
from .figures import Money, Rate

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")  # "-600.00" is a figure, not a formula
MONEY_FORMAT, RATE_FORMAT = "#,##0.00", "0.00%"
TIME_FORMAT, DATE_FORMAT = "yyyy-mm-dd hh:mm:ss", "yyyy-mm-dd"
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
        return _local(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value[:1] in _FORMULA and not _NUMBER.match(value):
        return "'" + value
    return value


def _local(value: datetime) -> datetime:
    """A time as a spreadsheet holds it: naive, in the chain's zone unless already local (naive)."""
    return (value.astimezone(zone()).replace(tzinfo=None) if value.tzinfo else value).replace(microsecond=0)


def _typed(sheet, value):
    """A value as an Excel cell: figures and times as numbers with a number format."""
    from openpyxl.cell import WriteOnlyCell
    if value is None or value == "":
        return None
    if isinstance(value, (Money, Rate)):
        number = Decimal(value) / 100 if isinstance(value, Rate) else Decimal(value)
        cell = WriteOnlyCell(sheet, value=number)
        cell.number_format = RATE_FORMAT if isinstance(value, Rate) else MONEY_FORMAT
        return cell
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=_local(value))
        cell.number_format = TIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_FORMAT
        return cell
    return _cell(value)


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
        sheet.append([_typed(sheet, v) for v in row])
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


def key_value_rows(figures: dict, name=str):
    """A flat report (KPIs, room figures) as field/value rows; `name` gives a row its label
    (the API keeps the keys, the pages write the figures' names in the page's language)."""
    return ((name(key), "" if value is None else value) for key, value in figures.items())


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
