"""Date arithmetic the two databases spell differently, as SQL expressions."""
from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement):
    """later − earlier, in whole days (both dates)."""
    type = Integer()
    inherit_cache = True


@compiles(days_between)
def _days_pg(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"CAST(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}) AS INTEGER)"


class greatest(FunctionElement):
    inherit_cache = True


class least(FunctionElement):
    inherit_cache = True


def _spell(element_class, standard: str, sqlite: str):
    """Compile a variadic function as GREATEST/LEAST, or as SQLite's multi-argument MAX/MIN."""
    compiles(element_class)(lambda el, compiler, **kw: f"{standard}({compiler.process(el.clauses, **kw)})")
    compiles(element_class, "sqlite")(lambda el, compiler, **kw: f"{sqlite}({compiler.process(el.clauses, **kw)})")


_spell(greatest, "GREATEST", "MAX")
_spell(least, "LEAST", "MIN")
