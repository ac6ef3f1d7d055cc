"""The one exception a user's bad input raises, with everything needed to fix it."""

from __future__ import annotations


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
        parts = [p for p in (self.file, self.document) if p]
        head = ": ".join(parts)
        where = f"{self.field}: " if self.field else ""
        value = f"{self.value!r} " if self.value is not None else ""
        tail = f"; valid: {self.valid}" if self.valid else ""
        body = f"{where}{value}{self.message}{tail}"
        return f"{head}: {body}" if head else body


class ScenarioErrors(ScenarioError):
    """Several problems found in one pass; each is printed on its own line."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.line() for e in errors))

    def lines(self) -> list[str]:
        return [e.line() for e in self.errors]
