"""What differs between the servers envsync introspects, in one place (after Skeema's tengo
`Flavor`): MariaDB 10.11 (local mode), MySQL 5.7 (Aurora 2), MySQL 8.0 (Aurora 3).

Introspection asks a `Flavour` what the server can tell (`flavour.check_constraints`, ...)
instead of threading a `mariadb` flag through; each capability cites the manual that says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Tuple

MARIADB, MYSQL = "mariadb", "mysql"


@dataclass(frozen=True)
class Flavour:
    vendor: str  # MARIADB or MYSQL
    version: Tuple[int, int, int]

    @classmethod
    def from_version(cls, text: str) -> Flavour:
        """`SELECT VERSION()`: `10.11.19-MariaDB-0+deb12u1`, `8.0.36`, `5.7.12-log`."""
        numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
        version = tuple(int(part) for part in numbers.groups()) if numbers else (0, 0, 0)
        vendor = MARIADB if "mariadb" in text.lower() else MYSQL
        return cls(vendor=vendor, version=(version[0], version[1], version[2]))

    def _at_least(self, vendor: str, *version: int) -> bool:
        return self.vendor == vendor and self.version >= version

    def __str__(self) -> str:
        return f"{'MariaDB' if self.vendor == MARIADB else 'MySQL'} {'.'.join(map(str, self.version))}"

    @property
    def quotes_literal_defaults(self) -> bool:
        """COLUMNS.COLUMN_DEFAULT holds literals quoted, NULL as the word NULL (MariaDB 10.2.7+;
        https://mariadb.com/kb/en/information-schema-columns-table/). MySQL holds the raw value
        (https://dev.mysql.com/doc/refman/8.0/en/information-schema-columns-table.html)."""
        return self._at_least(MARIADB, 10, 2, 7)

    @property
    def check_constraints(self) -> bool:
        """CHECK constraints are stored and shown in information_schema.CHECK_CONSTRAINTS:
        MySQL 8.0.16+ (https://dev.mysql.com/doc/refman/8.0/en/information-schema-check-constraints-table.html),
        MariaDB 10.2.22+ and 10.3.10+ (https://mariadb.com/kb/en/information-schema-check_constraints-table/).
        MySQL 5.7 parses CHECK and discards it
        (https://dev.mysql.com/doc/refman/5.7/en/create-table.html): nothing to compare there."""
        return (self._at_least(MYSQL, 8, 0, 16) or self._at_least(MARIADB, 10, 3, 10)
                or (self._at_least(MARIADB, 10, 2, 22) and self.version < (10, 3, 0)))

    @property
    def ignored_indexes(self) -> bool:
        """STATISTICS.IGNORED (MariaDB 10.6+; https://mariadb.com/kb/en/ignored-indexes/)."""
        return self._at_least(MARIADB, 10, 6, 0)

    @property
    def invisible_indexes(self) -> bool:
        """STATISTICS.IS_VISIBLE, MySQL 8.0's name for the same idea
        (https://dev.mysql.com/doc/refman/8.0/en/invisible-indexes.html)."""
        return self._at_least(MYSQL, 8, 0, 0)

    @property
    def view_algorithm(self) -> bool:
        """VIEWS.ALGORITHM exists on MariaDB 10.1.3+
        (https://mariadb.com/kb/en/information-schema-views-table/); MySQL's VIEWS has no such
        column (https://dev.mysql.com/doc/refman/8.0/en/information-schema-views-table.html)."""
        return self._at_least(MARIADB, 10, 1, 3)

    @property
    def index_expressions(self) -> bool:
        """STATISTICS.EXPRESSION for functional key parts (MySQL 8.0.13+;
        https://dev.mysql.com/doc/refman/8.0/en/information-schema-statistics-table.html)."""
        return self._at_least(MYSQL, 8, 0, 13)

    @property
    def table_types(self) -> bool:
        """TABLES.TABLE_TYPE says `SYSTEM VERSIONED` or `SEQUENCE` (MariaDB 10.3+;
        https://mariadb.com/kb/en/information-schema-tables-table/)."""
        return self._at_least(MARIADB, 10, 3, 0)

    @property
    def check_constraints_name_their_table(self) -> bool:
        """CHECK_CONSTRAINTS has TABLE_NAME on MariaDB (column-level checks are named after their
        column, so names repeat across tables); MySQL 8's has none, its names are unique per schema
        and the table comes from TABLE_CONSTRAINTS
        (https://dev.mysql.com/doc/refman/8.0/en/information-schema-check-constraints-table.html)."""
        return self.vendor == MARIADB

    @property
    def own_password_statement(self) -> str:
        """How an account changes its own password: `%(new)s` the new one, `%(current)s` the one
        it logged in with.

        MySQL 8.0.13+: `ALTER USER USER() IDENTIFIED BY ... REPLACE <current>`. With
        password_require_current=ON (or the account's PASSWORD REQUIRE CURRENT) MySQL 8.0 refuses
        a change without REPLACE and accepts one with the right current password either way, as
        its own test suite records (tests/engine/mysql/fixtures/password_require_current.result;
        MySQL 8.0 Reference Manual, 13.7.1.1 ALTER USER: REPLACE is available as of 8.0.13).
        MySQL 5.7: `ALTER USER USER() IDENTIFIED BY`, which any account may run for itself
        (MySQL 5.7 Reference Manual, 13.7.1.1 ALTER USER: "USER() ... to change the password of the
        current user"; it has no REPLACE clause; `SET PASSWORD = PASSWORD(...)` is deprecated).
        MariaDB: ALTER USER needs the CREATE USER privilege even for oneself (measured on 10.11:
        error 1227), while `SET PASSWORD = PASSWORD(...)` needs none for one's own account (MariaDB
        docs, SET PASSWORD). A bare `SET PASSWORD = '...'` is no way out: MariaDB reads the string
        as an already hashed password.
        """
        if self.vendor == MARIADB:
            return "SET PASSWORD = PASSWORD(%(new)s)"
        if self._at_least(MYSQL, 8, 0, 13):
            return "ALTER USER USER() IDENTIFIED BY %(new)s REPLACE %(current)s"
        return "ALTER USER USER() IDENTIFIED BY %(new)s"

    @property
    def cheap_row_digest(self) -> str:
        """The SQL digest function that costs least per call here, for hashing one row at a time.

        MariaDB 10.11 built with OpenSSL 3 fetches the MD5 implementation on every `MD5()` call
        (mysys_ssl/my_md5.cc: `EVP_MD_fetch(NULL, "MD5", "fips=no")` in `md5_init`), so a call
        costs ~0.4 us where `SHA1()` costs ~0.04 us (measured over 1 M short values: MD5 0.56 s,
        SHA1 0.21 s, a bare scan 0.13 s). MySQL is the other way round: `compute_md5_hash` calls
        OpenSSL's `MD5_Init/Update/Final` directly (mysys/my_md5.cc, 5.7 and 8.0) while 8.0's
        `compute_sha1_hash` allocates an `EVP_MD_CTX` and runs `EVP_DigestInit_ex` per call
        (mysys/my_sha1.cc). Both functions exist on every flavour with the same result.
        """
        return "SHA1" if self.vendor == MARIADB else "MD5"


def row_digest_for(source_version: str, target_version: str) -> str:
    """The per-row digest both servers of a comparison use (they must compute the same one):
    the flavour's cheap one when both are the same vendor, else MD5."""
    source, target = Flavour.from_version(source_version), Flavour.from_version(target_version)
    return source.cheap_row_digest if source.vendor == target.vendor else "MD5"
