"""Read one schema's structure from ``information_schema`` into a normalised, comparable model.

``load_schema(conn, schema)`` runs one query per object kind for the whole schema (tables,
columns, index columns, CHECK constraints, partitions, foreign-key rules, foreign-key columns,
views, triggers, routines, routine parameters, events: twelve queries plus ``SELECT
VERSION()``), never one per table, so a schema of hundreds of tables loads in a fraction of a
second. What each server can show is asked of its ``Flavour`` (``envsync.mysql.flavour``).

The model (``SchemaModel``) is built from frozen dataclasses holding tuples, sorted by name, so
two models compare with ``==``, and ``to_dict()``/``from_dict()`` round-trip through JSON.
Compared, besides names, types, defaults, keys and bodies: table, column and index comments,
table options (CREATE_OPTIONS: row_format, stats_*, key_block_size...), table type (MariaDB
system versioning, sequences), partitioning, CHECK constraints (MariaDB, MySQL 8.0.16+), ignored
(MariaDB) / invisible (MySQL 8) indexes, view ALGORITHM (MariaDB), events.
Sequence options are read with one query per sequence (MariaDB has no information_schema table
for them before 11.5). Listed per object in ``SchemaModel.not_compared`` (the report's "not
compared"), never treated as equal: event STARTS/ENDS, view ALGORITHM where the server does not show it
(MySQL), functional key parts where it does not show their expression.
Left out by design (per-environment, not structure): AUTO_INCREMENT counters, row counts, sizes,
create/update times, definers, sql_mode.

Normalisations, so that the same schema on MariaDB 10.11, MySQL 5.7 (Aurora 2) and MySQL 8.0
(Aurora 3), and under two different schema names, compares equal:

* Integer display widths are dropped (``int(11)`` -> ``int``, ``bigint(20) unsigned`` ->
  ``bigint unsigned``) unless ZEROFILL makes them meaningful; ``year(4)`` -> ``year``. MySQL
  8.0.19+ no longer reports display widths, MariaDB and 5.7 do; they never change storage.
* ``utf8`` is spelled ``utf8mb3`` (charsets and collations): MariaDB 10.6+ and MySQL 8.0.30+ say
  ``utf8mb3`` for what 5.7 calls ``utf8``.
* Column defaults become one canonical text: ``None`` for "no default" and for a NULL default
  (MariaDB reports the latter as the *string* ``'NULL'``, MySQL as SQL NULL); literals as one
  single-quoted SQL string (MariaDB 10.2.7+ reports ``'abc'`` quoted and escaped, numbers bare;
  MySQL reports the raw value ``abc`` unquoted), so ``0.00`` and ``'0.00'`` agree; bit literals
  ``b'1'`` as they are; expressions lower-cased outside quotes, whitespace removed around
  punctuation, one pair of enclosing parentheses dropped, and every spelling of the current
  time (``current_timestamp()``, ``CURRENT_TIMESTAMP``, ``now()``, ``localtimestamp``) as
  ``current_timestamp`` / ``current_timestamp(N)``. MySQL marks expression defaults with
  ``DEFAULT_GENERATED`` in EXTRA (8.0) or reports a bare ``CURRENT_TIMESTAMP`` (5.7); MariaDB
  leaves expressions unquoted.
* EXTRA is lower-cased, ``DEFAULT_GENERATED`` (MySQL 8 only) dropped, ``on update
  current_timestamp()`` spelled like defaults.
* Generated-column expressions go through the expression normaliser (MySQL wraps them in
  parentheses, MariaDB does not).
* View definitions, trigger bodies and routine bodies: qualifiers naming the introspected schema
  itself (`` `app`.`orders` `` and ``app.orders``) are removed, so the same object in schema
  ``app_dev`` and ``app_stg`` compares equal; comments are removed, whitespace is kept only
  between two words and backquotes only where a name needs them, so formatting-only changes are
  not drift. String literals and letter case are untouched.
  Definers and ``sql_mode`` are ignored (they differ per environment by design).
* Foreign keys that reference the same schema record ``referenced_schema=None``; the rule
  ``NO ACTION`` is spelled ``RESTRICT`` (InnoDB treats them alike; MySQL 8 reports an omitted
  clause as NO ACTION, MariaDB and 5.7 as RESTRICT).

Not normalised (reported as drift across server flavours, on purpose or for lack of a safe
rule): default collations that really differ (MySQL 8's ``utf8mb4_0900_ai_ci`` vs MariaDB's
``utf8mb4_general_ci``), MariaDB's ``longtext`` + CHECK for MySQL's ``json``, and the server's own
rewriting of view definitions and default expressions, which MariaDB and MySQL print
differently (same flavour on both sides compares fine; our three environments all run the same
engine).

The package follows the object kinds (after Skeema's tengo): ``model`` (the dataclasses),
``normalise`` (the rules above, pure), the per-kind readers ``tables`` (with ``keys``: indexes,
checks, foreign keys), ``views``, ``triggers``, ``routines`` and ``events``, all reading through
the shared ``envsync.mysql.infoschema`` layer; ``load_schema`` below assembles them.
"""

from __future__ import annotations

from typing import Any

from envsync.drift.introspect.events import read_events
from envsync.drift.introspect.model import (
    Check,
    Column,
    Event,
    ForeignKey,
    Index,
    IndexPart,
    Parameter,
    Routine,
    SchemaModel,
    Table,
    Trigger,
    View,
)
from envsync.drift.introspect.normalise import (
    normalise_body,
    normalise_collation,
    normalise_column_type,
    normalise_default,
    normalise_expression,
    normalise_extra,
)
from envsync.drift.introspect.reading import Reading
from envsync.drift.introspect.routines import read_routines
from envsync.drift.introspect.tables import read_tables
from envsync.drift.introspect.triggers import read_triggers
from envsync.drift.introspect.views import read_views
from envsync.mysql import infoschema
from envsync.mysql.flavour import Flavour

__all__ = [
    "Check",
    "Column",
    "Event",
    "ForeignKey",
    "Index",
    "IndexPart",
    "Parameter",
    "Routine",
    "SchemaModel",
    "Table",
    "Trigger",
    "View",
    "load_schema",
    "normalise_body",
    "normalise_collation",
    "normalise_column_type",
    "normalise_default",
    "normalise_expression",
    "normalise_extra",
]


def load_schema(conn: Any, schema: str) -> SchemaModel:
    """Introspect ``schema`` over a DB-API connection (PyMySQL) into a ``SchemaModel``.

    Privileges (measured on MariaDB 10.11 with a SELECT + SHOW VIEW user, see
    test_drift.py::test_reader_privileges_decide_what_is_visible): SELECT on the schema shows
    tables, columns, indexes and FKs; SHOW VIEW adds view definitions; but **triggers are
    invisible without the TRIGGER privilege** and **routines are invisible without SELECT on
    mysql.proc** (MariaDB, MySQL 5.7; SHOW_ROUTINE on MySQL 8.0.20+) or routine ownership.
    Invisible objects are simply absent from the model, so compare such a side with
    ``diff(..., ignore_kinds=("trigger", "procedure", "function"))`` or load it with a user that
    can see them (e.g. the environment's own writer, publishing ``to_dict()`` for others).
    """
    version = str(infoschema.rows(conn, "SELECT VERSION()")[0][0])
    reading = Reading(conn=conn, schema=schema, flavour=Flavour.from_version(version))
    tables = read_tables(reading)
    views = read_views(reading)
    triggers = read_triggers(reading)
    routines = read_routines(reading)
    events = read_events(reading)
    return SchemaModel(
        tables=tables, views=views, triggers=triggers, routines=routines, schema=schema, server=version,
        events=events, not_compared=tuple(sorted(set(reading.not_compared))),
    )
