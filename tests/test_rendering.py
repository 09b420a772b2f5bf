"""The YAML the build writes reads back, with PyYAML's safe loader (what cfn-lint and most rule engines use), as
exactly the data CloudFormation receives: troposphere's own JSON of each template."""

from __future__ import annotations

import json

import pytest
import yaml

from generators.build import render, template_builders
from generators.rendering import to_yaml
from generators.settings import Settings


@pytest.mark.parametrize("name", list(template_builders()))
def test_each_template_reads_back_as_its_json(name: str) -> None:
    template = template_builders()[name](Settings())
    assert yaml.safe_load(render(template)) == json.loads(template.to_json())


TRICKY = {
    "reserved words stay strings": ["yes", "No", "on", "OFF", "true", "False", "null", "y", "n"],
    "numbers as text stay text": ["0123", "1.5", "1e3", "-1", "0x10", ".5"],
    "punctuation": ["*", "-", "a: b", "ends:", "#comment", "a #b", "&anchor", "!Ref x", "%x", "@x", "`x", "'q'",
                    '"dq"', "{x}", "[x]", "?", "|", ">", "a,b", "back\\slash", "tab\there", "new\nline"],
    "names that may stay plain": ["AWS::S3::Bucket", "Fn::GetAtt", "Ref", "my-bucket", "a.b/c_d", "_x"],
    "empty": ["", " ", "  padded  "],
    "non-ASCII": ["café", "日本", "emoji 🙂"],
}


@pytest.mark.parametrize("kind", list(TRICKY))
def test_scalars_read_back_unchanged(kind: str) -> None:
    values = TRICKY[kind]
    document = {"AsValues": values, "AsKeys": {value: value for value in values}}
    assert yaml.safe_load(to_yaml(document)) == document


def test_shapes_read_back_unchanged() -> None:
    document = {
        "Numbers": [0, -3, 2.5, 1e-7, 10**20],
        "Booleans": [True, False],
        "Null": None,
        "Empty": {"Map": {}, "List": [], "Nested": [[], {}]},
        "ListOfMaps": [{"b": 1, "a": [1, 2]}, {"only": {"deep": ["x"]}}],
        "ListOfLists": [[1, [2, [3]]], ["a"]],
        "Tuple": (1, "two"),
        "Repeated": [{"Ref": "A"}, {"Ref": "A"}, {"Ref": "yes"}],
    }
    expected = json.loads(json.dumps(document))
    assert yaml.safe_load(to_yaml(document)) == expected


def test_keys_are_sorted_and_sequences_keep_their_order() -> None:
    text = to_yaml({"b": [3, 1, 2], "a": {"z": 1, "m": 2}})
    assert text == "a:\n  m: 2\n  z: 1\nb:\n- 3\n- 1\n- 2\n"


def test_unrenderable_values_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot render set"):
        to_yaml({"Bad": {1, 2}})
    with pytest.raises(ValueError, match="no such number"):
        to_yaml({"Bad": float("nan")})
