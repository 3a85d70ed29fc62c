"""A company's monthly statement as Excel (openpyxl, through reports/exports) or PDF (reportlab,
Chinese text in the built-in CID font STSong-Light: no font file to ship), and the ageing
report as CSV/Excel rows."""
import io

from flask import Response
from flask_babel import gettext as _

from ..core.money import format_fen
from ..reports import exports
from ..reports.figures import money


def kind_name(kind: str) -> str:
    return {"charge": _("Charge"), "reversal": _("Void"), "payment": _("Payment"),
            "adjustment": _("Adjustment")}.get(kind, kind)


def statement_header():
    return [_("Date"), _("Entry"), _("Store"), _("Bill no."), _("Signer"), _("Reference"), _("Amount"), _("Owed")]


def statement_rows(st):
    yield ["", _("Opening owed"), "", "", "", "", "", money(st.opening)]
    for line in st.lines:
        yield [line["date"], kind_name(line["kind"]), line["store"], line["bill_no"] or "", line["signer"],
               line["reference"], money(line["amount"]), money(line["balance"])]
    yield ["", _("Closing owed"), "", "", "", "", "", money(st.closing)]


def statement_name(st) -> str:
    return f"statement-{st.account.company_id}-{st.year:04d}-{st.month:02d}"


def statement_xlsx(st) -> Response:
    return exports.download("xlsx", statement_name(st), statement_header(), statement_rows(st))


def statement_pdf(st) -> Response:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=14 * mm,
                            bottomMargin=14 * mm, title=statement_name(st))
    company = st.account.company
    story = [Paragraph(_("Statement of account") + f" · {_esc(company.name)} · {st.year:04d}-{st.month:02d}", title),
             Spacer(1, 4 * mm),
             Paragraph(_("Credit limit") + f": {format_fen(st.account.credit_limit)}　" + _("Opening owed") +
                       f": {format_fen(st.opening)}　" + _("Closing owed") + f": {format_fen(st.closing)}", body),
             Spacer(1, 4 * mm)]
    rows = [statement_header()]
    for row in statement_rows(st):
        rows.append([Paragraph(_esc(str(v)), body) if i in (2, 4, 5) else str(v) for i, v in enumerate(row)])
    rows.append(["", _("Charges"), "", "", "", "", format_fen(st.totals["charges"]), ""])
    rows.append(["", _("Voids"), "", "", "", "", format_fen(st.totals["reversals"]), ""])
    rows.append(["", _("Payments"), "", "", "", "", format_fen(st.totals["payments"]), ""])
    widths = [20 * mm, 20 * mm, 28 * mm, 16 * mm, 24 * mm, 36 * mm, 20 * mm, 22 * mm]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
                               ("ALIGN", (6, 0), (7, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                               ("LINEABOVE", (0, -3), (-1, -3), 0.3, colors.grey)]))
    story.append(table)
    doc.build(story)
    return Response(out.getvalue(), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{statement_name(st)}.pdf"'})


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ageing_header():
    return [_("Company"), _("Credit limit"), _("Current (0–30 days)"), _("31–60 days"), _("61–90 days"),
            _("Over 90 days"), _("Credit"), _("Owed")]


def ageing_rows(report):
    for row in report["companies"]:
        yield [row["company"], money(row["credit_limit"]), money(row["current"]), money(row["days_31_60"]),
               money(row["days_61_90"]), money(row["over_90"]), money(row["credit"]), money(row["owed"])]
    t = report["totals"]
    yield [_("Total"), "", money(t["current"]), money(t["days_31_60"]), money(t["days_61_90"]), money(t["over_90"]),
           money(t["credit"]), money(t["owed"])]
