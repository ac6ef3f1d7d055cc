"""The one exception a user's bad input raises, with everything needed to fix it."""

from __future__ import annotations

# Each part of a message is cut to this many characters: a 1 MB name gives a short line.
PART_MAX = 200
VALUE_MAX = 80
# ``ScenarioErrors.lines()`` gives this many problems, then a count of the rest.
SHOWN_ERRORS = 20


def clip(text: str, limit: int = PART_MAX) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with ``...``, and control
    characters escaped (``\\x1e``): a key a user wrote can neither split the line nor
    drive the terminal."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def value_text(value: object) -> str:
    """``repr(value)`` for a message, short; an integer past Python's 4,300-digit
    ``str()`` limit is described, not printed (printing it raises ValueError)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    try:
        return clip(repr(value), VALUE_MAX)
    except (ValueError, RecursionError):
        return "<unprintable value>"


class ScenarioError(Exception):
    """Bad input: names the file, the document, the field, the value and what would be valid.

    ``str()`` is the one line the CLI prints before exiting with status 2, e.g.::

        demo.yaml: document 3 (Pod default/web): spec.containers[0].ports[1].containerPort:
        8080 is declared twice in the pod (containers share one network namespace); use
        distinct ports
    """

    def __init__(self, message: str, *, file: str = "", document: str = "", field: str = "",
                 value: object = None, valid: str = "") -> None:
        self.file = file
        self.document = document
        self.field = field
        self.value = value
        self.valid = valid
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        parts = [clip(p) for p in (self.file, self.document) if p]
        head = ": ".join(parts)
        where = f"{clip(self.field)}: " if self.field else ""
        value = f"{value_text(self.value)} " if self.value is not None else ""
        tail = f"; valid: {clip(self.valid)}" if self.valid else ""
        body = f"{where}{value}{clip(self.message, 2 * PART_MAX)}{tail}"
        return f"{head}: {body}" if head else body


class ScenarioErrors(ScenarioError):
    """Several problems found in one pass; each is printed on its own line."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        super().__init__("; ".join(self.lines()))

    def lines(self) -> list[str]:
        """The first ``SHOWN_ERRORS`` problems, then how many more there are: 100,000 bad
        documents are 21 lines, not 100,000."""
        shown = [e.line() for e in self.errors[:SHOWN_ERRORS]]
        rest = len(self.errors) - len(shown)
        if rest > 0:
            noun = "problem" if rest == 1 else "problems"
            shown.append(f"... and {rest:,} more {noun} (the first {SHOWN_ERRORS} "
                         "are shown)")
        return shown
