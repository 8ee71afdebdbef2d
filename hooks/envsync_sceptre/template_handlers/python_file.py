"""`template: {type: envsync_python, path: <file>.py}`: a Python template (`sceptre_handler`),
rendered safely while Sceptre renders the stacks of a batch in parallel threads.

Sceptre's own `file` handler loads a `.py` template with `SourceFileLoader(path, path).load_module()`,
which is not thread-safe for one path: two stacks of one batch that share a template (staging's
peering-upstream and peering-downstream both render peering.py) can fail with "module ... not in
sys.modules". Here each render loads the file as a module of its own, under a lock; the handler
itself then runs outside it.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
from pathlib import Path
from typing import Any, Mapping, Optional

from sceptre.exceptions import UnsupportedTemplateFileTypeError
from sceptre.helpers import normalise_path
from sceptre.template_handlers import TemplateHandler

_LOADING = threading.Lock()
_SERIAL = itertools.count()


def render_python_template(path: Path, sceptre_user_data: Optional[Mapping[str, Any]]) -> str:
    """The template body `sceptre_handler(sceptre_user_data)` of the Python file at `path` returns."""
    with _LOADING:
        # Its helpers (template_common.py) sit beside it, as Sceptre's own handler makes them importable.
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))
        spec = importlib.util.spec_from_file_location(f"_envsync_template_{path.stem}_{next(_SERIAL)}", path)
        if spec is None or spec.loader is None:
            raise UnsupportedTemplateFileTypeError(f"{path}: not a loadable Python file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    handler = getattr(module, "sceptre_handler", None)
    if handler is None:
        raise UnsupportedTemplateFileTypeError(f"{path}: a Python template needs a sceptre_handler(sceptre_user_data)")
    return handler(sceptre_user_data)


class PythonFile(TemplateHandler):
    """The `file` handler's Python case, thread-safe."""

    def schema(self) -> dict:
        return {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}

    def handle(self) -> str:
        relative = Path(normalise_path(self.arguments["path"]))
        if relative.suffix != ".py":
            raise UnsupportedTemplateFileTypeError(f"{relative}: envsync_python renders .py templates only")
        return render_python_template(Path(self.stack_group_config["project_path"]) / "templates" / relative,
                                      self.sceptre_user_data)
