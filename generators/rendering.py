"""Deterministic long-form YAML for the built templates, without a YAML library.

Templates are plain data (mappings, lists, strings, numbers, booleans): block mappings with sorted keys,
block sequences, and scalars that are either plain (simple names such as ``Ref`` or ``AWS::S3::Bucket``) or
JSON double-quoted strings, which are valid YAML double-quoted scalars. There are no short tags (``!Ref``):
intrinsic functions stay ``Ref:``/``Fn::GetAtt:`` keys, which every rule engine reads. About five times faster
than troposphere's ``to_yaml`` (a pure-Python YAML emitter); ``tests/test_rendering.py`` checks that
PyYAML reads back exactly the template's JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_:./-]*")
# Plain words YAML 1.1 readers (PyYAML, cfn-lint) would take for booleans or null.
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _string(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED and not value.endswith(":"):
        return value
    return json.dumps(value, ensure_ascii=False)


def _non_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))  # an IntEnum member as its number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render {value} in a template: JSON has no such number")
        text = repr(value)
        # YAML 1.1 (PyYAML, cfn-lint) reads an exponent without a dot ("1e-07") as a string.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    raise TypeError(f"cannot render {type(value).__name__} in a template")


class _Emitter:
    """The lines of one template. Keys and values repeat (``Type``, ``Ref``, ``Fn::Sub``, resource names), so
    each distinct string is turned into its YAML form once."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._strings: dict[str, str] = {}

    def scalar(self, value: Any) -> str:
        if isinstance(value, str):
            text = self._strings.get(value)
            if text is None:
                text = self._strings[value] = _string(value)
            return text
        return _non_string(value)

    def lines(self, value: Any, indent: str) -> None:
        """Append the block lines of a non-empty mapping or sequence at ``indent``."""
        if isinstance(value, dict):
            for key in sorted(value):
                self.entry(f"{indent}{self.scalar(key)}:", value[key], indent, False)
            return
        for item in value:
            if isinstance(item, dict) and item:
                start = len(self.out)
                self.lines(item, indent + "  ")
                self.out[start] = f"{indent}- {self.out[start].lstrip()}"
            else:
                self.entry(f"{indent}-", item, indent, True)

    def entry(self, head: str, value: Any, indent: str, in_sequence: bool) -> None:
        if isinstance(value, dict | list | tuple):
            if not value:
                self.out.append(f"{head} {{}}" if isinstance(value, dict) else f"{head} []")
                return
            self.out.append(head)
            # A sequence under a mapping key may stay at the key's indentation, as PyYAML writes it.
            self.lines(value, indent + "  " if in_sequence or isinstance(value, dict) else indent)
        else:
            self.out.append(f"{head} {self.scalar(value)}")


def to_yaml(template: Mapping[str, Any]) -> str:
    emitter = _Emitter()
    emitter.lines(template, "")
    return "\n".join(emitter.out) + "\n"
