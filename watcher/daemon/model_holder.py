"""The classifier (and its model) kept in memory while there is work, released after ``idle`` seconds unused.

The daemon classifies after each fetch that brought something. Loading the model costs seconds and hundreds of
MB; keeping it forever costs the memory all day for a few minutes of work. ``ModelHolder`` builds the classifier
on first use, hands the same one out while it keeps being used, and drops it once it has been idle for ``idle``
seconds (``release_if_idle``, called by a daemon job). Time is passed in. The daemon's classifier is a
``ProcessClassifier``: the model runs in a child process, which ends when the model is released.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from classifiers.decide.base import Classified, Classifier
from watcher.models import Item
from watcher.util.errors import ClassifierError


class ModelHolder:
    def __init__(self, factory: Callable[[], Classifier], idle: float):
        self._factory, self.idle = factory, idle
        self._classifier: Classifier | None = None
        self._lock = threading.Lock()
        self.loaded_at: datetime | None = None
        self.last_used: datetime | None = None
        self.loads = 0

    def get(self, now: datetime) -> Classifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = self._factory()
                self.loaded_at, self.loads = now, self.loads + 1
            self.last_used = now
            return self._classifier

    def factory(self, now: Callable[[], datetime]) -> Callable[[], Classifier]:
        """A classifier factory for ``classify_pending``: the held classifier, built if needed."""
        return lambda: self.get(now())

    def release_if_idle(self, now: datetime) -> bool:
        """Drop the classifier if unused for ``idle`` seconds; True if it was dropped."""
        with self._lock:
            if self._classifier is None or self.last_used is None:
                return False
            if (now - self.last_used).total_seconds() < self.idle:
                return False
            classifier, self._classifier, self.loaded_at = self._classifier, None, None
        close = getattr(classifier, "close", None)
        if close is not None:
            close()  # a ProcessClassifier: its process ends, and with it the model's memory
        del classifier
        gc.collect()  # an in-process model's tensors are freed now, not at some later collection
        return True

    def close(self) -> None:
        """Release the classifier now, used or not (the daemon stops)."""
        with self._lock:
            self.last_used = datetime.min.replace(tzinfo=UTC)
        self.release_if_idle(datetime.max.replace(tzinfo=UTC))

    @property
    def loaded(self) -> bool:
        return self._classifier is not None

    def describe(self) -> dict[str, Any]:
        """The model's state, for ``watcher status``."""
        return {"loaded": self.loaded, "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
                "last_used": self.last_used.isoformat() if self.last_used else None, "idle_release": self.idle,
                "loads": self.loads}


class ProcessClassifier:
    """The real classifier, run in a child process (spawned): torch and the model live only there, so releasing
    the model (``close``, which ends the child) gives all of their memory back to the system, which freeing the model
    inside the daemon would not do (torch stays imported, glibc keeps the heap).

    Built from the arguments of ``classifiers.decide.hybrid.build_classifier`` (picklable settings, head path, source
    profiles). ``classify`` and ``version`` (which says which path ran) are asked over a pipe; an error in the child
    comes back as ``ClassifierError``.
    """

    def __init__(self, *build_args: Any):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, build_args), daemon=True, name="watcher-model")
        self._process.start()
        child.close()
        self.name = str(self._answer())  # the child says who it is once the classifier is built

    @property
    def version(self) -> str:
        return str(self._ask("version"))

    def classify(self, items: Sequence[Item]) -> list[Classified]:
        return self._ask("classify", list(items))  # type: ignore[no-any-return]

    def _ask(self, verb: str, *args: Any) -> Any:
        try:
            self._conn.send((verb, args))
        except OSError as exc:
            raise ClassifierError(f"the model process stopped ({type(exc).__name__}); exit code "
                                  f"{self._process.exitcode}") from None
        return self._answer()

    def _answer(self) -> Any:
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise ClassifierError(f"the model process stopped ({type(exc).__name__}); exit code "
                                  f"{self._process.exitcode}") from None
        if not ok:
            raise ClassifierError(f"the model process failed: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def _serve(conn: Any, build_args: tuple[Any, ...]) -> None:
    """The child: build the classifier as the App does, then answer until told to stop (or the parent is gone)."""
    from classifiers.decide.hybrid import build_classifier

    try:
        classifier = build_classifier(*build_args)
        conn.send((True, classifier.name))
    except Exception as exc:  # sent back: the parent raises it as a ClassifierError
        conn.send((False, f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        verb, args = request
        try:
            value = getattr(classifier, verb)
            conn.send((True, value(*args) if callable(value) else value))
        except Exception as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"))
