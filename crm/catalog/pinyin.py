"""What the till's item search matches besides SKU and name: pinyin initials and full
pinyin of an item's name, e.g. 三文鱼刺身 -> "swycs sanwenyucishen", so a cashier finds
it by typing `swy` or `sanwen` on a keyboard without switching to a Chinese IME.

Stored on the item (`Item.search_pinyin`), computed whenever its name is set, rather than
in a per-process cached index: the till runs in several gunicorn workers and on several
hosts, and a column is right in all of them the moment the item is saved (no cache to
invalidate), and a plain `LIKE '%swy%'` on it works the same on SQLite and PostgreSQL.
"""
import re

_HAN = re.compile(r"[\u3400-\u9fff]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _join(parts) -> str:
    return _NOT_WORD.sub("", "".join(parts).lower())


def search_text(name: str) -> str:
    """"initials full" in lower-case ASCII; other letters and digits of the name are kept
    as they are (`LOBSTER 2号` -> "lobster2h lobster2hao")."""
    name = name or ""
    if not _HAN.search(name):
        return _join([name])
    from pypinyin import Style, lazy_pinyin  # its dictionaries cost 0.16 s: loaded when an item is named, not at boot
    initials = _join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default"))
    full = _join(lazy_pinyin(name, style=Style.NORMAL, errors="default"))
    return f"{initials} {full}"[:300]


def query_key(q: str) -> str:
    """A typed query as the column stores it: lower-case letters and digits only."""
    return _NOT_WORD.sub("", (q or "").lower())
