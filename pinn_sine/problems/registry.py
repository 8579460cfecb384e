"""The named problems the CLI and ``compare`` know: a registry at the edge.

:func:`register_problem` adds a class (a decorator, or a call), checking it first;
:data:`PROBLEMS` is the read-only view of the table; :func:`problem_class` looks a name
up and, for an unknown one, lists the valid names.
"""
from __future__ import annotations

from types import MappingProxyType

from .base import Problem, _check_class

_REGISTRY: dict[str, type[Problem]] = {}
#: name -> problem class, read-only (register with :func:`register_problem`)
PROBLEMS = MappingProxyType(_REGISTRY)


def register_problem(cls: type[Problem], *, replace: bool = False) -> type[Problem]:
    """Register ``cls`` under ``cls.name`` for the CLI and ``compare`` and return it.

    Checks what can be checked on the class (a :class:`Problem` subclass with a
    ``name``, ``sample`` taking ``progress``); a name already taken by another class
    raises unless ``replace=True``. Use as ``@register_problem`` above the class.
    """
    if not (isinstance(cls, type) and issubclass(cls, Problem)):
        raise TypeError(f"register_problem needs a Problem subclass, got {cls!r}.")
    _check_class(cls)
    held = _REGISTRY.get(cls.name)
    if held is not None and held is not cls and not replace:
        raise ValueError(f'the problem name "{cls.name}" is taken by {held.__module__}.{held.__qualname__}; '
                         "choose another name, or pass replace=True.")
    _REGISTRY[cls.name] = cls
    return cls


def unregister_problem(name: str) -> type[Problem]:
    """Remove ``name`` from the registry and return its class (tests, notebooks)."""
    return _REGISTRY.pop(problem_class(name).name)


def problem_class(name: str) -> type[Problem]:
    """The registered class called ``name``; a ValueError lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f'Invalid problem "{name}". Must be one of {sorted(_REGISTRY)}.') from None
