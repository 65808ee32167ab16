"""JSON Schema -> GBNF grammar, so that a structured reply always parses and validates.

llama.cpp's own converter lives in ``llama_cpp.llama_grammar``, and only the engine
worker may import llama_cpp (importing it loads the native library). This is the
same construction (llama.cpp's ``json-schema-to-grammar``: a ``space`` rule between
tokens, one rule per schema node) for the part of JSON Schema that structured-output
clients send: objects with properties and required keys, arrays with item counts,
strings with lengths, numbers, integers, booleans, null, enum, const, anyOf/oneOf,
type lists and local ``$ref``. Keywords that would change what is valid but cannot be
expressed here (``pattern``, ``allOf``, ``not``, ...) raise ``SchemaError`` naming the
keyword rather than silently producing JSON that would not validate.
"""

from __future__ import annotations

import json
import re
from typing import Any


class SchemaError(ValueError):
    """The JSON schema cannot be turned into a grammar; the message names the spot."""


# Keywords that only describe (or that every reply built here already satisfies).
_ANNOTATIONS = frozenset({
    "title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "format", "additionalProperties", "strict", "name", "$defs", "definitions",
    "unevaluatedProperties",
})
_UNSUPPORTED = ("pattern", "patternProperties", "allOf", "not", "if", "then", "else", "dependentRequired",
                "dependentSchemas", "propertyNames", "contains", "uniqueItems", "multipleOf",
                "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minProperties",
                "maxProperties", "prefixItems")

_PRIMITIVES = {
    "space": r'| " " | "\n" [ \t]{0,20}',
    "boolean": '("true" | "false") space',
    "null": '"null" space',
    "integral-part": "[0] | [1-9] [0-9]{0,15}",
    "decimal-part": "[0-9]{1,16}",
    "integer": '("-"? integral-part) space',
    "number": '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space',
    "char": r'[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": r'"\"" char* "\"" space',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space',
    "array": '"[" space ( value ("," space value)* )? "]" space',
}
_DEPENDS = {
    "integer": ("integral-part", "space"), "number": ("integral-part", "decimal-part", "space"),
    "string": ("char", "space"), "boolean": ("space",), "null": ("space",),
    "value": ("object", "array", "string", "number", "boolean", "null"),
    "object": ("string", "value", "space"), "array": ("value", "space"),
}


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + out.replace("\t", "\\t") + '"'


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "r"


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self._refs: dict[str, str] = {}

    def primitive(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = _PRIMITIVES[name]
            for dep in _DEPENDS.get(name, ()):
                self.primitive(dep)
        return name

    def add(self, name: str, body: str) -> str:
        base, n = _name(name), 0
        key = base
        while key in self.rules and self.rules[key] != body:
            n += 1
            key = f"{base}-{n}"
        self.rules[key] = body
        return key

    def visit(self, schema: Any, name: str, where: str) -> str:
        """A rule name (or an inline expression) for ``schema``."""
        if schema is True or schema == {}:
            return self.primitive("value")
        if not isinstance(schema, dict):
            raise SchemaError(f"{where}: a schema must be an object, got {type(schema).__name__}")
        for key in _UNSUPPORTED:
            if key in schema:
                raise SchemaError(f"{where}: the keyword {key!r} is not supported for structured output")
        if "$ref" in schema:
            return self.ref(schema["$ref"], where)
        if "const" in schema:
            self.primitive("space")
            return self.add(name, self.literal(schema["const"]) + " space")
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaError(f"{where}: 'enum' must be a non-empty list")
            self.primitive("space")
            return self.add(name, "(" + " | ".join(self.literal(v) for v in values) + ") space")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = schema[key]
                if not isinstance(alts, list) or not alts:
                    raise SchemaError(f"{where}: {key!r} must be a non-empty list of schemas")
                return self.add(name, " | ".join(
                    self.visit(alt, f"{name}-{i}", f"{where}.{key}[{i}]") for i, alt in enumerate(alts)))
        t = schema.get("type")
        if isinstance(t, list):
            if not t:
                raise SchemaError(f"{where}: 'type' must not be an empty list")
            return self.add(name, " | ".join(
                self.visit({**schema, "type": one}, f"{name}-{one}", where) for one in t))
        if t is None:
            if "properties" in schema:
                t = "object"
            elif "items" in schema:
                t = "array"
            else:
                return self.primitive("value")
        if t == "object":
            return self.object(schema, name, where)
        if t == "array":
            return self.array(schema, name, where)
        if t == "string":
            lo, hi = schema.get("minLength", 0), schema.get("maxLength")
            if not lo and hi is None:
                return self.primitive("string")
            self.primitive("char")
            self.primitive("space")
            return self.add(name, r'"\"" ' + _repeat("char", int(lo), None if hi is None else int(hi)) + r' "\"" space')
        if t in ("number", "integer", "boolean", "null"):
            return self.primitive(t)
        raise SchemaError(f"{where}: unknown type {t!r}")

    def literal(self, value: Any) -> str:
        return gbnf_literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def ref(self, ref: Any, where: str) -> str:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise SchemaError(f"{where}: only local references ('#/$defs/NAME') are supported, got {ref!r}")
        if ref in self._refs:
            return self._refs[ref]
        target: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise SchemaError(f"{where}: the reference {ref!r} points at nothing")
            target = target[part]
        rule = _name("ref-" + ref[2:])
        self._refs[ref] = rule
        self.rules[rule] = ""  # reserve: recursive schemas refer to the rule before it is built
        body = self.visit(target, rule + "-body", ref)
        self.rules[rule] = body
        return rule

    def object(self, schema: dict[str, Any], name: str, where: str) -> str:
        props = schema.get("properties")
        self.primitive("space")
        if not props:
            return self.primitive("object")
        if not isinstance(props, dict):
            raise SchemaError(f"{where}: 'properties' must be an object")
        required = schema.get("required", [])
        if not isinstance(required, list) or any(r not in props for r in required):
            missing = [r for r in required if r not in props] if isinstance(required, list) else required
            raise SchemaError(f"{where}: 'required' names properties that are not defined: {missing}")
        kv: dict[str, str] = {}
        for key, sub in props.items():
            value = self.visit(sub, f"{name}-{key}", f"{where}.properties.{key}")
            kv[key] = self.add(f"{name}-{key}-kv", f'{self.literal(key)} space ":" space {value}')
        req = [k for k in props if k in required]
        opt = [k for k in props if k not in required]
        body = ' "," space '.join(kv[k] for k in req)
        if opt:
            # rest_i: a non-empty, in-order selection of the optional keys from i on.
            rest = ""
            for i in range(len(opt) - 1, -1, -1):
                alt = kv[opt[i]] if not rest else f'{kv[opt[i]]} ("," space {rest})? | {rest}'
                rest = self.add(f"{name}-rest-{i}", alt)
            body = f'{body} ("," space {rest})?' if body else f"({rest})?"
        return self.add(name, f'"{{" space {body} "}}" space')

    def array(self, schema: dict[str, Any], name: str, where: str) -> str:
        item = self.visit(schema.get("items", True), f"{name}-item", f"{where}.items")
        lo, hi = int(schema.get("minItems", 0)), schema.get("maxItems")
        hi = None if hi is None else int(hi)
        if hi is not None and hi < lo:
            raise SchemaError(f"{where}: maxItems ({hi}) is smaller than minItems ({lo})")
        self.primitive("space")
        if hi == 0:
            return self.add(name, '"[" space "]" space')
        more = _repeat(f'("," space {item})', max(lo - 1, 0), None if hi is None else hi - 1)
        inner = f"{item} {more}"
        if lo == 0:
            inner = f"({inner})?"
        return self.add(name, f'"[" space {inner} "]" space')


def _repeat(expr: str, lo: int, hi: int | None) -> str:
    if lo == 0 and hi is None:
        return f"{expr}*"
    if hi is None:
        return f"{expr}{{{lo},}}"
    return f"{expr}{{{lo},{hi}}}"


def schema_to_gbnf(schema: Any) -> str:
    """The GBNF grammar (root rule ``root``) for a JSON schema; raises SchemaError."""
    if not isinstance(schema, dict) and schema is not True:
        raise SchemaError(f"the schema must be a JSON object, got {type(schema).__name__}")
    conv = _Converter(schema if isinstance(schema, dict) else {})
    root = conv.visit(schema, "root", "schema")
    if root != "root":
        conv.rules["root"] = root
    order = ["root"] + sorted(k for k in conv.rules if k != "root")
    return "\n".join(f"{k} ::= {conv.rules[k]}" for k in order) + "\n"
