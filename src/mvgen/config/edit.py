"""Small, surgical edits to a shot list file that keep the user's layout and comments.

``mvgen pick`` pins a take by writing its seed (and ``takes: 1``) into the shot's own mapping: the
choice lives in the file, so the next render, anyone's, uses that take.
"""

from __future__ import annotations

from typing import Any

import yaml

from mvgen.config.loader import LoadedShotList, find_node, parse_shotlist_text
from mvgen.errors import ConfigError


def set_shot_keys(loaded: LoadedShotList, index: int, values: dict[str, Any]) -> str:
    """The shot list's text with ``values`` set in ``shots[index]`` (replaced where written, added
    where not); checked by parsing it back."""
    node = find_node(loaded.root, ("shots", index))
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise ConfigError(f"{loaded.path}: shots[{index}] is not a mapping that can be edited")
    text = loaded.text
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in characters
    missing = []
    for key, value in values.items():
        found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if found is not None:
            edits.append((found.start_mark.index, found.end_mark.index, str(value)))
        else:
            missing.append(f"{key}: {value}")
    if missing:
        if node.flow_style:  # {prompt: ..., length: 8} -> insert before the closing brace
            close = text.rindex("}", 0, node.end_mark.index)
            edits.append((close, close, ", " + ", ".join(missing)))
        else:  # a block mapping: new lines before its first key, at that key's indentation
            first = node.value[0][0].start_mark
            indent = "\n" + " " * first.column
            edits.append((first.index, first.index, indent.join(missing) + indent))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    parse_shotlist_text(text, loaded.path)  # never write a file that no longer loads
    return text
