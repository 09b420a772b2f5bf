"""Loading what tests share: modules that are not importable packages, and the event fixtures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

EVENTS_DIR = Path(__file__).resolve().parent / "events"


def load_module(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name`` (once per test session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> dict:
    """An EventBridge event fixture from ``tests/events``."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
