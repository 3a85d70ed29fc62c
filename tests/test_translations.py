"""The Chinese catalogue is complete: every UI string has a checked translation."""
import re
from pathlib import Path

from babel.messages.pofile import read_po

PO = Path(__file__).resolve().parent.parent / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"


def _first(value):
    return value if isinstance(value, str) else value[0]


def test_every_string_has_a_translation_and_none_is_a_guess():
    catalog = read_po(PO.open("rb"))
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]  # pybabel's guesses from similar strings
    empty = [m.id for m in catalog if m.id and not (m.string if isinstance(m.string, str) else all(m.string))]
    assert fuzzy == [] and empty == []


def test_translations_keep_their_placeholders():
    catalog = read_po(PO.open("rb"))
    broken = [m.id for m in catalog if m.id and any(
        f"%({name})" not in _first(m.string) for name in re.findall(r"%\((\w+)\)", _first(m.id)))]
    assert broken == []
