"""Stages by name: the registry the command line (``pinn-sine solve --stage``) and run
folders (``config.json``'s ``"stages"``) build optimizer stages from.

A stage spec is ``NAME[:key=value,...]``, e.g. ``adam:steps=500,lr=1e-3`` or
``gauss_newton:steps=300,descent=cg,descent.rank=100``: the keys are the keyword
arguments of the stage's constructor, a dotted key ``part.option=value`` sets an option
of a part given as a dict (``{"name": ..., option: value}``), and :func:`parse_stage_spec`
turns the text into the dict :func:`stage_from_description` builds the stage from. That
dict has the shape of a stage's :meth:`~pinn_sine.optim.Stage.describe`, so a run's
stored settings rebuild its stages the same way.
"""
from __future__ import annotations

import inspect
import json
import math
import re
from types import MappingProxyType

from ..problems.registry import unknown_name_message
from .gauss_newton import GaussNewton
from .stages import LBFGS, Adam, Stage

#: stage name -> stage class (read-only); the names are the classes' ``name``
STAGES = MappingProxyType({"adam": Adam, "lbfgs": LBFGS, "gauss_newton": GaussNewton})
#: other spellings of a stage name -> its name in :data:`STAGES`
ALIASES = MappingProxyType({"gn": "gauss_newton", "l-bfgs": "lbfgs"})

FORM = 'NAME[:key=value,...], e.g. "adam:steps=500,lr=1e-3" or "gauss_newton:steps=300,batch=1000"'
_KEY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")
_INT = re.compile(r"[+-]?[0-9]+(_[0-9]+)*")


def stage_name(name) -> str:
    """The name in :data:`STAGES` of ``name`` (itself or an alias); a ValueError with
    the known names and a did-you-mean otherwise."""
    if isinstance(name, str) and name in STAGES:
        return name
    if isinstance(name, str) and name in ALIASES:
        return ALIASES[name]
    raise ValueError(unknown_name_message("stage", name, [*STAGES, *ALIASES]))


def _keywords(cls) -> tuple[dict, bool]:
    """The keyword parameters of ``cls``'s constructor by name, and whether it takes
    any keyword (``**kwargs``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _parse_number(key: str, text: str):
    """``text`` as an int or a finite float, or None when it is not a number."""
    if _INT.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        raise ValueError(f"{key}={text} is not a finite number")
    return value


def _parse_value(key: str, text: str):
    """A setting's value: int, finite float, true/false, none, a pair "a/b" of numbers
    (a list of two floats: Adam's betas), else the string itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    number = _parse_number(key, text)
    if number is not None:
        return number
    parts = text.split("/")
    if len(parts) == 2:
        try:
            pair = [_parse_number(key, p.strip()) for p in parts]
        except ValueError:
            raise ValueError(f"{key}={text} is not a pair of finite numbers") from None
        if all(v is not None for v in pair):
            return [float(v) for v in pair]
    return text


def parse_stage_spec(text: str) -> dict:
    """The stage a spec ``NAME[:key=value,...]`` describes, as the dict
    :func:`stage_from_description` takes.

    ``"gauss_newton:steps=300,descent=cg,descent.rank=100"`` gives ``{"stage":
    "gauss_newton", "steps": 300, "descent": {"name": "cg", "rank": 100}}``; without
    dotted keys ``descent=cg`` stays ``"descent": "cg"``. Names may be aliases
    (:data:`ALIASES`: ``gn``, ``l-bfgs``); the dict holds the name in :data:`STAGES`.
    Values: integers (``300``, ``1_000``), finite floats (``1e-3``), ``true``/``false``,
    ``none``, pairs of numbers ``0.9/0.999`` (a list of two floats), else strings.

    The keys are checked against the stage's constructor (a dotted key's part too, not
    its option: the part checks those); required arguments (``steps``) are not, since a
    resumed run may take them from its stored stage.

    Raises:
        ValueError: an empty or unknown name, a setting without "=" or value, a
            duplicate or unknown key, a value that is not finite; the message names the
            bad piece and shows the expected form.
    """
    if not isinstance(text, str):
        raise ValueError(f"a stage spec is a string {FORM}; got {text!r}.")
    where = f'stage "{text}"'
    name, _, body = text.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"{where}: no stage name before the settings. Expected {FORM}.")
    try:
        name = stage_name(name)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    cls = STAGES[name]
    named, any_keyword = _keywords(cls)
    spec: dict = {"stage": name}
    seen: set[str] = set()
    pieces = [p.strip() for p in body.split(",")] if body.strip() else []
    for piece in pieces:
        if not piece:
            raise ValueError(f"{where}: an empty setting (two commas, or one at an end). Expected {FORM}.")
        key, eq, raw = piece.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq:
            raise ValueError(f'{where}: the setting "{piece}" has no "=". Expected {FORM}.')
        if not _KEY.fullmatch(key):
            raise ValueError(f'{where}: "{key}" is not a setting name (a keyword, or part.option). Expected {FORM}.')
        if not raw:
            raise ValueError(f'{where}: the setting "{key}=" has no value. Expected {FORM}.')
        part, dot, option = key.partition(".")
        same = key if dot else f"{key}.name"  # "descent=cg" is "descent.name=cg"
        if same in seen:
            raise ValueError(f'{where}: "{key}" is given twice. Give each setting once: {FORM}.')
        seen.add(same)
        if part == "stage" or (part not in named and not any_keyword):
            raise ValueError(f'{where}: {_unknown_keyword(cls, part, named)}')
        try:
            value = _parse_value(key, raw)
        except ValueError as err:
            raise ValueError(f"{where}: {err}; give a finite number.") from None
        if dot:
            current = spec.get(part)
            if not isinstance(current, dict):
                current = {} if part not in spec else {"name": current}
                spec[part] = current
            current[option] = value
        elif isinstance(spec.get(part), dict):
            spec[part]["name"] = value
        else:
            spec[part] = value
    for part, value in spec.items():  # "name" first, as describe() writes a part
        if isinstance(value, dict) and "name" in value:
            spec[part] = {"name": value["name"], **{k: v for k, v in value.items() if k != "name"}}
    return spec


def _unknown_keyword(cls, key: str, named: dict) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(named), n=1, cutoff=0.5)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    return (f'unknown setting "{key}" of {cls.name}.{hint} {cls.__name__} takes '
            f"{', '.join(named)}.")


def _canon(value):
    """``value`` as JSON reads it back (tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def stage_from_description(desc: dict) -> Stage:
    """The stage a :meth:`~pinn_sine.optim.Stage.describe` dict (or a
    :func:`parse_stage_spec` dict) describes: ``STAGES[desc["stage"]](**settings)``.

    Keys that are no constructor argument are state the stage restores itself (Adam's
    ``"schedule_steps"`` of a resumed, extended run): they go through the stage's
    ``resume_settings`` after construction, and must then read back the same from its
    ``describe()``; any other key is refused. Parts given as dicts (``"descent":
    {"name": "cg", ...}``) are passed through to the constructor as they are.

    Raises:
        ValueError: not a stage dict, an unknown stage, a missing required argument
            (``steps``), a key the stage neither takes nor restores, or a value the
            stage's own checks refuse.
    """
    if not isinstance(desc, dict) or "stage" not in desc:
        raise ValueError(f'a stage description is a dict with a "stage" name, e.g. {{"stage": "adam", "steps": 500}}; '
                         f"got {desc!r}.")
    name = stage_name(desc["stage"])
    cls = STAGES[name]
    named, any_keyword = _keywords(cls)
    settings = {k: v for k, v in desc.items() if k != "stage" and (k in named or any_keyword)}
    state = {k: v for k, v in desc.items() if k != "stage" and k not in settings}
    missing = [k for k, p in named.items() if p.default is inspect.Parameter.empty and k not in settings]
    if missing:
        given = ",".join(f"{k}=..." for k in missing)
        raise ValueError(f"stage {name} needs {', '.join(missing)}, e.g. {name}:{given.replace('...', '500', 1)}.")
    try:
        stage = cls(**settings)
    except TypeError as err:
        raise ValueError(f"stage {name}: {err}") from None
    if state:
        stage.resume_settings(dict(desc))
        described = stage.describe()
        wrong = [k for k in state if k not in described or _canon(described[k]) != _canon(state[k])]
        if wrong:
            raise ValueError(f'stage {name}: {", ".join(f"{k}={state[k]!r}" for k in wrong)} is no setting of '
                             f"{cls.__name__}; it takes {', '.join(named)}.")
    return stage
