"""In-process renders of templates that can do nothing the render process guards against.

A template made only of literal text and `{{ name }}`, `{{ name.attr }}` and `{{ name['key'] }}`
outputs calls nothing, loops nowhere and builds nothing larger than its data: rendering it is a few
dict look-ups, and the round trip to a render process (pickle, pipe, JSON, /proc) would be most of
its cost. `plan()` decides from Jinja's own tokens and AST, made by the sandbox environment itself,
so whitespace control, comments, raw blocks and the trailing newline come out as the render process
sees them (a template whose tokens are not all text, names, dots, brackets and strings is not even
parsed here: parsing recurses). `render()` follows the sandbox's rules (render.py) for what it
meets and returns None on anything else, so the render process decides:
- data: None and missing keys or names render empty, and so does anything below them (the
  chainable undefined); a look-up on a plain dict reads its key; str, bool, int and float are
  printed by `str` (text) or `markupsafe.escape` (html); dicts and lists by `str` after None became
  undefined (`_blank_none`), as the sandbox prints them;
- refused at parse time: attributes or keys that start with `_` or that a dict has as an attribute
  (`items`, `get` ...: the sandbox returns the method), names the environment or the compiler give a
  meaning (`range`, `self`, `loop` ...), non-string keys, and every other node;
- refused at run time: a look-up on anything but a plain dict or undefined, a printed value that is
  not plain data (subclasses such as Markup, tuples, objects), ints of more than `MAX_INT_BITS`
  (near Python's limit str() fails: that refusal stays the render process's), containers deeper or
  larger than the walk allows;
- the limits: template length (left to the render process), the printed value's size and the
  output length, refused with the same messages (`too_big`, `output_too_long`)."""
from __future__ import annotations

import functools
import threading
import time
from typing import Any, Iterable

from jinja2 import TemplateSyntaxError, nodes
from markupsafe import escape

from .render import HubSandbox, Limits, TemplateProblem, _blank_none, output_too_long, too_big
from .sizes import text_size

PLAN_CACHE = 512                     # distinct template sources whose plan is kept (<= 20,000 characters each)
MAX_INT_BITS = 4096                  # ~1,200 digits: far below Python's 4,300-digit str() limit
MAX_DEPTH = 32                       # nesting of a printed dict or list
MAX_NODES = 2000                     # items of a printed dict or list, all levels
_RESERVED = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super", "true", "false", "none",
                       "True", "False", "None"})
_LEAVES = (str, int, float, bool, type(None))
_PRINT_TOKENS = frozenset({"data", "variable_begin", "variable_end", "name", "dot", "lbracket", "rbracket", "string",
                           "eof"})
_UNDEFINED = object()                # a missing or None value: prints empty, look-ups below it too
_GIVE_UP = object()                  # a look-up on a value the sandbox would not treat as a dict

_env_lock = threading.Lock()
_env: HubSandbox | None = None


def _parser() -> HubSandbox:
    """The sandbox environment itself (same delimiters, trim/lstrip and newline settings)."""
    global _env
    with _env_lock:
        if _env is None:
            _env = HubSandbox(Limits(), autoescape=False)
        return _env


def _path(node: nodes.Node, env: HubSandbox) -> tuple[str, ...] | None:
    """(name, key, key ...) of a Name with Getattr / Getitem-by-string above it, else None."""
    keys: list[str] = []
    while True:
        kind = type(node)
        if kind is nodes.Name:
            if node.ctx != "load" or node.name in _RESERVED or node.name in env.globals:
                return None
            return (node.name, *reversed(keys))
        if kind is nodes.Getattr and node.ctx == "load":
            key = node.attr
        elif kind is nodes.Getitem and node.ctx == "load" and type(node.arg) is nodes.Const \
                and type(node.arg.value) is str:
            key = node.arg.value
        else:
            return None
        # on a dict these would be its methods (or refused: `_`), not its keys
        if not key or key.startswith("_") or hasattr(dict, key):
            return None
        keys.append(key)
        node = node.node


def _tokens_only_print(env: HubSandbox, source: str) -> bool:
    """Text (comments and raw blocks are text to the lexer) and `{{ }}` holding only names, dots,
    brackets and strings. The lexer does not recurse: checked first, it leaves the parser nothing
    to nest (`{{ ((((...)))) }}` would raise RecursionError here, in a hub thread)."""
    try:
        return all(token.type in _PRINT_TOKENS for token in env.lexer.tokenize(source))
    except TemplateSyntaxError:
        return False


@functools.lru_cache(maxsize=PLAN_CACHE)
def plan(source: str) -> tuple[str | tuple[str, ...], ...] | None:
    """The template as literal strings and look-up paths, or None when it is not that simple."""
    env = _parser()
    if not _tokens_only_print(env, source):
        return None
    try:
        tree = env.parse(source)
    except (TemplateSyntaxError, RecursionError):
        return None
    parts: list[str | tuple[str, ...]] = []
    for output in tree.body:
        if type(output) is not nodes.Output:
            return None
        for child in output.nodes:
            if type(child) is nodes.TemplateData:
                if parts and isinstance(parts[-1], str):
                    parts[-1] += child.data
                elif child.data:
                    parts.append(child.data)
                continue
            path = _path(child, env)
            if path is None:
                return None
            parts.append(path)
    return tuple(parts)


def _look_up(context: dict, path: tuple[str, ...]) -> Any:
    value: Any = context.get(path[0], _UNDEFINED)
    for key in path[1:]:
        if value is None or value is _UNDEFINED:
            return _UNDEFINED
        if type(value) is not dict:
            return _GIVE_UP
        value = value.get(key, _UNDEFINED)
    return _UNDEFINED if value is None else value


def _plain(value: Any) -> bool:
    """Only exact dicts, lists and leaves, not too deep nor too many, ints of bounded size."""
    stack, seen = [(value, 0)], 0
    while stack:
        v, depth = stack.pop()
        seen += 1
        kind = type(v)
        if kind is dict:
            if depth >= MAX_DEPTH or seen + len(v) > MAX_NODES:
                return False
            for k, item in v.items():
                if type(k) not in _LEAVES or (type(k) is int and k.bit_length() > MAX_INT_BITS):
                    return False
                stack.append((item, depth + 1))
        elif kind is list:
            if depth >= MAX_DEPTH or seen + len(v) > MAX_NODES:
                return False
            stack.extend((item, depth + 1) for item in v)
        elif kind not in _LEAVES or (kind is int and v.bit_length() > MAX_INT_BITS):
            return False
    return True


def _text(value: Any, html: bool, limits: Limits) -> str | None:
    """What the sandbox prints for the value (its `finalize`, then `escape` or `str`), None to fall back."""
    if value is _UNDEFINED:
        if text_size(None, limits.max_value) > limits.max_value:     # an undefined counts 4, like None
            raise too_big(limits, "the printed value")
        return ""
    kind = type(value)
    if kind is str:
        pass
    elif kind is bool or kind is float or (kind is int and value.bit_length() <= MAX_INT_BITS):
        pass
    elif (kind is dict or kind is list) and _plain(value):
        value = _blank_none(value)          # None inside prints as `Undefined`, as in the sandbox
    else:
        return None
    if text_size(value, limits.max_value) > limits.max_value:
        raise too_big(limits, "the printed value")
    return str(escape(value)) if html else str(value)


def _render_one(parts: tuple, html: bool, limits: Limits, context: dict) -> str | None:
    out: list[str] = []
    total = 0
    for part in parts:
        if isinstance(part, str):
            text = part
        else:
            value = _look_up(context, part)
            if value is _GIVE_UP:
                return None
            text = _text(value, html, limits)
            if text is None:
                return None
        total += len(text)
        if total > limits.output_max_chars:
            raise output_too_long(limits)
        out.append(text)
    return "".join(out)


def render(limits: Limits, context: dict[str, Any],
           jobs: Iterable[Any]) -> list[tuple[str | None, str | None, float]] | None:
    """(text, problem, CPU seconds) per job, or None when any job needs the render process: a
    save-time check (known names), a template that is not simple, a value this path does not print."""
    plans = []
    for job in jobs:
        if job.known_names is not None or len(job.source) > limits.template_max_chars or type(context) is not dict:
            return None
        parts = plan(job.source)
        if parts is None:
            return None
        plans.append((parts, job.html))
    results = []
    for parts, html in plans:
        started = time.thread_time()
        try:
            text, problem = _render_one(parts, html, limits, context), None
            if text is None:
                return None
        except TemplateProblem as exc:
            text, problem = None, str(exc)
        results.append((text, problem, time.thread_time() - started))
    return results
