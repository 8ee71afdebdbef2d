"""Per-kind reader for stored procedures and functions, with their parameters."""

from __future__ import annotations

from typing import Dict, List, Tuple

from envsync.drift.introspect.model import Parameter, Routine
from envsync.drift.introspect.normalise import normalise_body, normalise_column_type
from envsync.drift.introspect.reading import Reading

_ROUTINES_SQL = """
SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS,
       SECURITY_TYPE, ROUTINE_DEFINITION, ROUTINE_COMMENT
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA = %s
"""

_PARAMETERS_SQL = """
SELECT SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
       DTD_IDENTIFIER
FROM information_schema.PARAMETERS
WHERE SPECIFIC_SCHEMA = %s AND ORDINAL_POSITION > 0
"""


def read_routines(reading: Reading) -> Tuple[Routine, ...]:
    parameters = _read_parameters(reading)
    return tuple(sorted(
        (
            Routine(
                name=name,
                type=str(routine_type).upper(),
                parameters=tuple(parameters.get((str(routine_type).upper(), name), [])),
                returns=normalise_column_type(dtd) if dtd else None,
                deterministic=str(deterministic).upper() == "YES",
                data_access=str(data_access or "").upper(),
                security_type=str(security_type or "").upper(),
                body=normalise_body(body, reading.schema),
                comment=comment or "",
            )
            for name, routine_type, dtd, deterministic, data_access, security_type, body, comment in reading.rows(
                _ROUTINES_SQL)
        ),
        key=lambda routine: (routine.type, routine.name),
    ))


def _read_parameters(reading: Reading) -> Dict[Tuple[str, str], List[Parameter]]:
    """Parameters by (routine type, routine name), in ordinal order."""
    numbered: Dict[Tuple[str, str], List[Tuple[int, Parameter]]] = {}
    for name, routine_type, position, mode, param_name, dtd in reading.rows(_PARAMETERS_SQL):
        numbered.setdefault((str(routine_type).upper(), name), []).append((int(position), Parameter(
            mode=str(mode).upper() if mode else None,
            name=param_name,
            type=normalise_column_type(dtd),
        )))
    return {key: [param for _, param in sorted(items, key=lambda item: item[0])] for key, items in numbered.items()}
