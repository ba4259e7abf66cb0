"""A test-only node with no inputs that outputs one fixed value: feeds a node under test through the headless runner
with something no pack node produces (a wrong tensor, a STRING standing in for another node's output)."""

from __future__ import annotations


def source_node(return_type: str, value):
    """A V1 node class whose single output (of ``return_type``) is ``value``."""

    class Source:
        RETURN_TYPES = (return_type,)
        FUNCTION = "run"
        CATEGORY = "EmoVid/test"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        def run(self):
            return (value,)

    return Source
