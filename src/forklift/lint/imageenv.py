"""Base image environments from the local store, for the undefined-variable check.

BuildKit looks at the pulled base image to know which variables it defines
(``$PYTHON_VERSION`` in ``python:3.12``). The linter never pulls anything,
but when the base image is already in the local store its configured
environment is used; otherwise only ``PATH`` is assumed, as BuildKit does for
an image it cannot resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from forklift.errors import ForkliftError


def store_image_env(store: object | None = None) -> Callable[[str], Mapping[str, str] | None]:
    """A resolver ``name -> env`` answering from the local store (``None``: not there)."""
    cache: dict[str, Mapping[str, str] | None] = {}
    opened: list[object] = [store] if store is not None else []

    def resolve(name: str) -> Mapping[str, str] | None:
        if name in cache:
            return cache[name]
        env: Mapping[str, str] | None = None
        try:
            if not opened:
                from forklift.store.store import Store

                opened.append(Store.open())
            image = opened[0].resolve(name)  # type: ignore[attr-defined]
            config = getattr(image, "config", None)
            if config is not None and config.config is not None:
                env = config.config.env_dict()
        except (ForkliftError, OSError):
            env = None
        cache[name] = env
        return env

    return resolve
