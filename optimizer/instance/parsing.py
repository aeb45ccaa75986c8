"""Reading a YAML or JSON file into a mapping, safely: every problem is a one-line InputError.

What a plain ``yaml.safe_load`` / ``json.loads`` lets through, and this module refuses:

- **Duplicate keys.** Both parsers silently keep the last value of a repeated key, so a typo that
  repeats ``periods:`` changes the instance without a word. Refused with the key and the line of
  the repeat (YAML) or the key (JSON). YAML merge keys (``<<: *defaults``) may still be overridden.
- **Deep nesting.** Parsers recurse once per level; 50,000 nested brackets end in a
  RecursionError (an internal error, exit 1). Nesting is bounded by ``MAX_DEPTH`` levels (an
  instance needs about 8), counted while composing the YAML document, so the parser never recurses
  deeper than that.
- **Alias bombs.** YAML aliases (``*name``) let a small file stand for an exponentially large
  document ("billion laughs"): validating it would cost time in the expanded size, not the file's.
  The expanded node count is bounded by ``MAX_NODES`` and an alias may not refer to itself.
- **Huge integer literals** (Python refuses to convert more than 4,300 digits: a ValueError).

With libyaml (PyYAML's C extension, in its wheels) the bounds are checked on the C parser's event
stream (``_check_events``: not recursive) before the C composer, which recurses, builds the
document; without it, the pure-Python ``BoundedSafeLoader`` checks them while composing. Both
construct with ``_NoDuplicateKeys``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from optimizer.errors import InputError

MAX_DEPTH = 64             # levels of nested mappings/lists (an instance file needs about 8)
MAX_NODES = 5_000_000      # scalars, mappings and lists after expanding YAML aliases
MAX_FILE_BYTES = 100_000_000


class _Refused(yaml.YAMLError):
    """A parse refused by one of the bounds above (carries the YAML position)."""

    def __init__(self, problem: str, mark=None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _NoDuplicateKeys:
    """Constructor mix-in: a mapping may not give one key twice (merge keys ``<<`` excepted)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class names it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first + 1}); give each key once",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


class BoundedSafeLoader(_NoDuplicateKeys, yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, nesting deeper than ``MAX_DEPTH``, more than
    ``MAX_NODES`` nodes once aliases are expanded, and recursive aliases (pure Python)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)

    # ------------------------------------------------------------ composing: depth and size

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)  # the anchored node (or a ComposerError)
            shape = self._shape.get(id(node))
            if shape is None:
                raise _Refused("an alias refers to the node that contains it (a recursive structure)", mark)
            self._count(shape[0], self._depth + shape[1], mark)
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        children = _children(node)
        size = 1 + sum(self._shape[id(c)][0] for c in children)
        height = 1 + max((self._shape[id(c)][1] for c in children), default=0)
        self._shape[id(node)] = (size, height)
        self._count(1, self._depth + 1, mark)
        return node

    def _count(self, nodes: int, depth: int, mark) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES:,} values once aliases are expanded", mark)
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels (through an alias)", mark)


_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
if _LIBYAML:
    class _CLoader(_NoDuplicateKeys, yaml.CSafeLoader):
        """libyaml's parser and composer, the safe constructor without duplicate keys."""


def _check_events(text: str) -> None:
    """The bounds of ``BoundedSafeLoader`` checked on the event stream of libyaml's parser
    (iterative, so no recursion however deep the text nests)."""
    stack: list[list] = []      # open collections: [size so far, highest child, anchor]
    shape: dict[str, tuple[int, int]] = {}  # anchor -> (expanded size, height) of its finished node
    total = 0

    def done(size: int, height: int, mark) -> None:
        if len(stack) + height > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
        if stack:
            stack[-1][0] += size
            stack[-1][1] = max(stack[-1][1], height)

    for ev in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) + 1 > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", ev.start_mark)
            stack.append([1, 0, ev.anchor])
            total += 1
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            size, high, anchor = stack.pop()
            if anchor is not None:
                shape[anchor] = (size, high + 1)
            done(size, high + 1, ev.start_mark)
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor is not None:
                shape[ev.anchor] = (1, 1)
            total += 1
            done(1, 1, ev.start_mark)
        elif isinstance(ev, yaml.AliasEvent):
            if any(entry[2] == ev.anchor for entry in stack):
                raise _Refused("an alias refers to the node that contains it (a recursive structure)", ev.start_mark)
            if ev.anchor not in shape:
                continue  # an undefined alias: the composer names it
            size, height = shape[ev.anchor]
            total += size
            if total > MAX_NODES:
                raise _Refused(f"more than {MAX_NODES:,} values once aliases are expanded", ev.start_mark)
            done(size, height, ev.start_mark)
        if total > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES:,} values once aliases are expanded", ev.start_mark)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the bounds of this module (YAMLError / ValueError on refusal)."""
    if _LIBYAML:
        _check_events(text)
        return yaml.load(text, Loader=_CLoader)  # noqa: S506 - a CSafeLoader subclass
    return yaml.load(text, Loader=BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (iterative: no recursion on deep input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"duplicate key {k!r} in one object; give each key once")
        out[k] = v
    return out


def parse_text(text: str, json_format: bool, where: str) -> Any:
    """Parse ``text`` (JSON or YAML); errors are InputError lines starting with ``where``
    (``file:line:column`` when the parser knows the position)."""
    if json_format:
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        except RecursionError:
            raise InputError(f"{where}: invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as e:  # a duplicate key, an integer of more than 4,300 digits
            raise InputError(f"{where}: invalid JSON: {e}") from None
        if _depth(data) > MAX_DEPTH:
            raise InputError(f"{where}: invalid JSON: nested deeper than {MAX_DEPTH} levels")
        return data
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
        problem = getattr(e, "problem", None) or str(e)
        raise InputError(f"{at}: invalid YAML: {problem}") from None
    except (ValueError, RecursionError) as e:  # an integer of more than 4,300 digits, ...
        raise InputError(f"{where}: invalid YAML: {e}") from None


def read_mapping(path: str | Path, what: str = "instance") -> dict:
    """Parse a YAML or JSON file (by extension) into a dict, or raise a one-line InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a YAML or JSON file")
    if not path.is_file():  # a FIFO or a device would be read forever
        raise InputError(f"{path}: not a regular file, expected a YAML or JSON file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB; an instance file is a few kB to a few MB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read: not UTF-8 text") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or type(e).__name__}") from None
    data = parse_text(text, path.suffix.lower() == ".json", str(path))
    if not isinstance(data, dict):
        raise InputError(f"{path}: the {what} must be a mapping of sections at the top level, got {type(data).__name__}")
    return data
