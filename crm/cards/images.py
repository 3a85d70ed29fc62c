"""QR images of a card's payload, drawn by the qrcode library."""
import io


def _qr(payload: str):
    import qrcode  # imported on first use (with PIL), not at every worker's boot
    from qrcode.constants import ERROR_CORRECT_M
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2, box_size=10)
    qr.add_data(payload)
    qr.make(fit=True)
    return qr


def png(payload: str) -> bytes:
    buf = io.BytesIO()
    _qr(payload).make_image().save(buf, format="PNG")
    return buf.getvalue()


def svg(payload: str) -> str:
    import qrcode.image.svg
    image = _qr(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")
