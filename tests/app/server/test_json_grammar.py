"""JSON Schema -> GBNF: what is supported becomes a grammar, what is not is refused by name."""

from __future__ import annotations

import pytest

from app.server.json_grammar import SchemaError, gbnf_literal, schema_to_gbnf


def _rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())


def test_object_with_required_and_optional_keys() -> None:
    g = _rules(schema_to_gbnf({"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "nick": {"type": "string"}},
        "required": ["name"]}))
    assert g["root"] == '"{" space root-name-kv ("," space root-rest-0)? "}" space'
    assert g["root-rest-0"] == 'root-age-kv ("," space root-rest-1)? | root-rest-1'
    assert g["root-rest-1"] == "root-nick-kv"
    assert g["root-name-kv"] == '"\\"name\\"" space ":" space string'


def test_arrays_strings_enums_refs_and_type_lists() -> None:
    g = _rules(schema_to_gbnf({
        "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array",
                                                                      "items": {"$ref": "#/$defs/node"}}}}},
        "type": "object", "properties": {
            "tags": {"type": "array", "items": {"enum": ["a", 1, None]}, "minItems": 1, "maxItems": 3},
            "code": {"type": "string", "minLength": 2, "maxLength": 4},
            "maybe": {"type": ["number", "null"]},
            "tree": {"$ref": "#/$defs/node"}},
        "required": ["tags", "code", "maybe", "tree"]}))
    assert g["root-tags"] == '"[" space root-tags-item ("," space root-tags-item){0,2} "]" space'
    assert g["root-tags-item"] == '("\\"a\\"" | "1" | "null") space'
    assert g["root-code"] == '"\\"" char{2,4} "\\"" space'
    assert g["root-maybe"] == "number | null"
    assert g["ref-defs-node"] == "ref-defs-node-body"  # recursive: the rule refers to itself
    assert g["ref-defs-node-body-kids"] == '"[" space (ref-defs-node ("," space ref-defs-node)*)? "]" space'


@pytest.mark.parametrize("schema, word", [
    ({"type": "string", "pattern": "^a+$"}, "pattern"),
    ({"allOf": [{"type": "string"}]}, "allOf"),
    ({"type": "object", "properties": {"x": {"type": "integer", "minimum": 3}}}, "minimum"),
    ({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["y"]}, "'y'"),
    ({"$ref": "https://example.com/s.json"}, "local references"),
    ({"type": "tuple"}, "unknown type"),
])
def test_what_cannot_be_enforced_is_refused_by_name(schema: dict, word: str) -> None:
    with pytest.raises(SchemaError, match=word.replace("^", r"\^")):
        schema_to_gbnf(schema)


def test_literals_escape_quotes_backslashes_and_newlines() -> None:
    assert gbnf_literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
