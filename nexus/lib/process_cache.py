"""Read-mostly rows kept in each process, dropped in every process as soon as they change.

    routes = ProcessCache("llm-routes")
    route = routes.get(name, lambda: load_route(name))     # the database only on a miss
    routes.invalidate()                                    # a writer changed the rows

Every AI call reads the same few rows (the model's route, the caller's limits); reading
them from PostgreSQL each time cost more than the rest of the call's own work. A
ProcessCache keeps them in this process's memory, tagged with a *generation*: a token under
one key of the shared cache (Redis in production). A writer replaces the token (at once,
and again when its transaction commits, so a reader that loaded the old rows between the
two cannot keep them); a reader compares its tag with the token on every read, one cache
round trip, and drops everything it holds when they differ. So a change is in force on
every process at its next read, as with the runtime settings.

A value is kept only under the generation it was read in (compare-and-set): a load that
began before a change and ends after another reader saw the new generation lands in the old
generation's entries, which nobody reads any more, never in the new ones.

Only what is read outside a transaction is kept: inside one, a read can see rows that are
later rolled back. When the shared cache cannot be reached, reads go to the database and
nothing is kept; entries also expire after `max_age` seconds, so a token replacement lost
to an outage cannot leave a process stale for longer than that.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Hashable
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save

from nexus.lib import snapshot

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ProcessCache(Generic[K, V]):
    def __init__(self, name: str, *, max_entries: int = 10_000, max_age: float = 60.0) -> None:
        self.key = f"process-cache:{name}:generation"
        snapshot.register(self.key)  # read with the others, once per request
        self.max_entries = max_entries
        self.max_age = max_age
        # The generation and its entries, replaced together (one assignment, so threads never
        # see one generation's tag with another's entries).
        self._state: tuple[str | None, dict[K, tuple[float, V]]] = (None, {})

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value under `key`, from this process's memory if it is current, else `load()`."""
        generation = self._generation()
        if generation is None:
            return load()
        state = self._state
        if state[0] != generation:
            state = self._state = (generation, {})
        entries = state[1]
        now = time.monotonic()
        entry = entries.get(key)
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1]
        value = load()
        if not connection.in_atomic_block:
            if len(entries) >= self.max_entries:
                entries.clear()
            # Into the entries of the generation this load began in: if another reader has
            # moved on meanwhile, they are no one's any more, and the value with them.
            entries[key] = (now, value)
        return value

    def invalidate(self) -> None:
        """The rows changed: every process reloads them at its next read."""
        self._clear()
        self._replace_generation()
        # Again at the commit: a reader that loaded the old rows in between drops them then.
        transaction.on_commit(self._replace_generation)

    def invalidate_on_change(
        self, *senders: type[models.Model], unless_only: Collection[str] = frozenset()
    ) -> None:
        """Invalidates whenever a row of these models is saved or deleted, by any path (admin,
        API, shell), except saves of only the fields `unless_only` (what readers don't use).
        Writes with queryset.update() send no signal: their services call invalidate()."""

        def changed(sender: type, update_fields: Collection[str] | None = None, **kwargs: Any) -> None:
            if update_fields is not None and unless_only and set(update_fields) <= set(unless_only):
                return
            self.invalidate()

        for sender in senders:
            name = f"{self.key}:{sender._meta.label}"
            post_save.connect(changed, sender=sender, weak=False, dispatch_uid=f"{name}:save")
            post_delete.connect(changed, sender=sender, weak=False, dispatch_uid=f"{name}:delete")

    def _generation(self) -> str | None:
        found, generation = snapshot.read(self.key)
        if found:
            return str(generation)
        try:
            generation = cache.get(self.key)
            if generation is None:
                cache.add(self.key, uuid.uuid4().hex, timeout=None)
                generation = cache.get(self.key)
        except Exception:
            logger.warning("%s: the shared cache is unreachable, reading the database", self.key)
            return None
        return str(generation) if generation is not None else None

    def _clear(self) -> None:
        self._state = (self._state[0], {})

    def _replace_generation(self) -> None:
        self._clear()
        snapshot.forget(self.key)
        try:
            cache.set(self.key, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.warning(
                "%s: could not tell other processes of a change; they see it within %.0f s",
                self.key,
                self.max_age,
                exc_info=True,
            )
