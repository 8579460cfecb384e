"""The named problems the CLI and ``compare`` know: a registry at the edge.

:func:`register_problem` adds a class (a decorator, or a call), checking it first;
:data:`PROBLEMS` is the read-only view of the table; :func:`problem_class` looks a name
up and, for an unknown one, lists the valid names.
"""
from __future__ import annotations

import difflib
import re
from types import MappingProxyType

from .base import Problem, _check_class

_REGISTRY: dict[str, type[Problem]] = {}
#: name -> problem class, read-only (register with :func:`register_problem`)
PROBLEMS = MappingProxyType(_REGISTRY)
#: the names a problem may be registered under: safe file names (no "/", spaces or a
#: leading dot), since the reference cache names its files after them
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def register_problem(cls: type[Problem], *, replace: bool = False) -> type[Problem]:
    """Register ``cls`` under ``cls.name`` for the CLI and ``compare`` and return it.

    Checks what can be checked on the class (a :class:`Problem` subclass with a
    ``name`` that is a safe file name, :data:`SAFE_NAME`; ``sample`` taking
    ``progress``); a name already taken by another class raises unless ``replace=True``.
    Use as ``@register_problem`` above the class.
    """
    if not (isinstance(cls, type) and issubclass(cls, Problem)):
        raise TypeError(f"register_problem needs a Problem subclass, got {cls!r}.")
    _check_class(cls)
    if not SAFE_NAME.fullmatch(cls.name):
        raise ValueError(f'the problem name "{cls.name}" is not a safe file name: the CLI takes it as an argument and '
                         f"the reference cache names its files after it; use letters, digits, '_', '.' and '-', "
                         f"starting with a letter or digit (regex {SAFE_NAME.pattern}), e.g. \"heat1d\".")
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
    """The registered class called ``name``; a ValueError lists the valid names (and the
    closest one, for a misspelt name)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(unknown_name_message("problem", name, _REGISTRY)) from None


def unknown_name_message(what: str, name: str, valid) -> str:
    """``Invalid problem "poison2d". Did you mean "poisson2d"? Must be one of [...].``"""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.6)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    return f'Invalid {what} "{name}".{hint} Must be one of {sorted(valid)}.'


#: environment variable: modules (names or .py paths, separated by os.pathsep) that
#: register problems, loaded by the CLI like ``--module``
MODULES_ENV = "PINN_SINE_MODULES"
#: the entry-point group of installed packages' problems (a module that registers them,
#: or a Problem class, which is registered)
ENTRY_POINT_GROUP = "pinn_sine.problems"


def load_problem_module(spec: str) -> list[str]:
    """Import ``spec`` -- a module name (``mypkg.problems``, found on ``sys.path`` or in the
    current folder) or the path of a ``.py`` file -- for the problems it registers, and
    return their names. Loading the same module twice in a process imports it once.

    This is how ``pinn-sine --module SPEC`` and ``compare``'s worker processes (spawned
    ones too: they are handed the specs) know a user's problems.

    Raises:
        ValueError: the module cannot be imported (the reason), or it registers no problem.
    """
    import hashlib
    import importlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    before = dict(_REGISTRY)
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise ValueError(f"no such file {spec}")
            resolved = path.resolve()
            key = f"_pinn_sine_user_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"
            if key not in sys.modules:
                loader_spec = importlib.util.spec_from_file_location(key, resolved)
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[key] = module
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[key]
                    raise
            module = sys.modules[key]
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.append(os.getcwd())
            module = importlib.import_module(spec)
    except ValueError as err:
        raise ValueError(f"module {spec}: {err}.") from None
    except Exception as err:  # the user's module: any import error is theirs to see, in one line
        raise ValueError(f"module {spec} cannot be imported ({type(err).__name__}: {err}).") from None
    names = sorted(set(_REGISTRY) - set(before))
    if not names:
        mine = sorted(n for n, c in _REGISTRY.items() if c.__module__ == module.__name__)
        if mine:
            return mine
        raise ValueError(f"module {spec} registers no problem; call register_problem(YourProblem) (or decorate "
                         "the class with @register_problem) when the module is imported.")
    return names


def load_problem_modules(specs=()) -> dict[str, list[str]]:
    """:func:`load_problem_module` of each of ``specs`` and of those named in
    ``PINN_SINE_MODULES``, after the installed packages' entry points (group
    ``pinn_sine.problems``); returns {spec: names registered}."""
    import os

    from_env = [s for s in os.environ.get(MODULES_ENV, "").split(os.pathsep) if s.strip()]
    loaded = load_entry_points()
    for spec in [*from_env, *specs]:
        loaded[spec] = load_problem_module(spec)
    return loaded


def load_entry_points() -> dict[str, list[str]]:
    """Register the problems of installed packages' entry points in the group
    ``pinn_sine.problems`` (``name = "mypkg.problems"`` or ``"mypkg.problems:MyProblem"``)."""
    from importlib.metadata import entry_points

    loaded = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        before = set(_REGISTRY)
        try:
            obj = ep.load()
        except Exception as err:
            raise ValueError(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}) cannot be loaded "
                             f"({type(err).__name__}: {err}).") from None
        if isinstance(obj, type) and issubclass(obj, Problem) and _REGISTRY.get(obj.name) is not obj:
            register_problem(obj)
        loaded[f"entry point {ep.name}"] = sorted(set(_REGISTRY) - before)
    return loaded
