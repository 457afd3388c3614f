"""What the deploy runs beside its own steps: a call in a thread of its own (an Ansible run
started early), and the output of such a run, held until the deploy reaches the step it
belongs to so that the phases read in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Say = Callable[[str], None]


class Background(Generic[T]):
    """`work()` started in a daemon thread; `result()` waits for it and returns what it
    returned, or raises what it raised."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> T | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class HeldOutput:
    """Lines kept until `release(say)`, then passed straight to `say`; `drop()` forgets them
    and whatever comes later."""

    def __init__(self) -> None:
        self._held: list[str] = []
        self._say: Say | None = None
        self._lock = threading.Lock()

    def line(self, line: str) -> None:
        with self._lock:
            if self._say is None:
                self._held.append(line)
            else:
                self._say(line)

    def release(self, say: Say) -> None:
        with self._lock:
            self._say = say
            for line in self._held:
                say(line)
            self._held.clear()

    def drop(self) -> None:
        self.release(lambda _line: None)
