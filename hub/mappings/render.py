"""User templates (task and project names and descriptions), rendered in a Jinja2 sandbox with a
size and a time budget.

An admin's template runs inside a worker for every matched event, so it must not be able to reach
Python internals, run for ever or exhaust memory:
- `SandboxedEnvironment` blocks attribute access to internals; an unsafe access is *refused* with
  an error (the stock sandbox only renders it as empty, which hides the attempt).
- Time: a CPU-time budget (`thread_time`) checked by a trace function on every line and call while
  the template renders, so loops are stopped wherever they run (template code or filters).
- Memory: operations that could build one huge value in a single C call are checked *before* they
  run (`*`, `**`, `%`, `+`, string padding, `replace`, `join`, `format` widths) and every filter's
  and call's result is size-checked after; the output is counted while it streams.
Errors are `TemplateProblem`s with one readable line, shown next to the field or on the run."""
from __future__ import annotations

import functools
import re
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_VALUE_FACTOR = 4        # an intermediate value may be this many times the output budget
_REMOVED_FILTERS = ("center", "indent", "format", "xmlattr", "batch", "slice", "wordwrap", "urlize")
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace", "dict")
_PADDING = {"ljust", "rjust", "center", "zfill", "expandtabs"}
_WIDTH = re.compile(r"\{[^{}]*?:[^{}]*?(\d{5,})[^{}]*\}|%[-+ #0]*(\d{5,})")


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; the message says why in one line."""


@dataclass(frozen=True)
class Limits:
    template_max_chars: int = 20000
    output_max_chars: int = 65536
    seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        return cls(settings["rules.template_max_chars"], settings["rules.output_max_chars"],
                   settings["rules.render_seconds"])

    @property
    def max_value(self) -> int:
        return self.output_max_chars * MAX_VALUE_FACTOR


class _Timeout(BaseException):
    pass


class _Undefined(ChainableUndefined):
    """Missing data renders as nothing (`{{ person.name }}` for a deal without a person)."""

    __slots__ = ()


class _CodeGenerator(CodeGenerator):
    """`a ~ b ~ c` is compiled to a direct join; route it through the environment to size-check it
    before it is built (`{% set a = a ~ a %}` doubles per line, faster than any time budget)."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.checked_concat({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


class HubSandbox(ImmutableSandboxedEnvironment):
    """Also immutable: templates cannot change the lists and dicts they are given."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator

    def __init__(self, limits: Limits, *, autoescape: bool):
        super().__init__(autoescape=autoescape, undefined=_Undefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=False)
        self.limits = limits
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters["join"] = self._guard_join(self.filters["join"])
        self.filters["replace"] = self._guard_replace(self.filters["replace"])
        self.filters = {name: self._checked(fn, name) for name, fn in self.filters.items()}

    # -- refusing instead of hiding -------------------------------------------------------------
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed in templates")

    # -- size guards ----------------------------------------------------------------------------
    def _too_big(self, what: str) -> TemplateProblem:
        return TemplateProblem(f"{what} would be larger than the limit of {self.limits.max_value} characters")

    def _check_result(self, value: Any, what: str) -> Any:
        if _size(value) > self.limits.max_value:
            raise self._too_big(what)
        return value

    def _checked(self, fn: Callable, name: str) -> Callable:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            return self._check_result(fn(*args, **kwargs), f"the result of the filter {name!r}")
        return run

    def _guard_join(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def join(*args: Any, **kwargs: Any) -> Any:
            items = [a for a in args if not hasattr(a, "environment")]  # skip the eval context
            if items and isinstance(items[0], (list, tuple)):
                sep = items[1] if len(items) > 1 else kwargs.get("d", "")
                total = sum(len(str(v)) for v in items[0]) + len(str(sep)) * len(items[0])
                if total > self.limits.max_value:
                    raise self._too_big("the joined text")
            return fn(*args, **kwargs)
        return join

    def _guard_replace(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
            text, old, new = str(s), str(old), str(new)
            hits = text.count(old) if old else len(text) + 1
            if len(text) + hits * len(new) > self.limits.max_value:
                raise self._too_big("the replaced text")
            return fn(eval_ctx, s, old, new, count)
        return replace

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limit = self.limits.max_value
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if _size(seq) and isinstance(times, int) and _size(seq) * max(times, 0) > limit:
                    raise self._too_big("the repeated value")
        elif operator == "**":
            if isinstance(left, (int, float)) and isinstance(right, (int, float)) and abs(right) > 64 \
                    and abs(left) > 1:
                raise TemplateProblem("powers with an exponent above 64 are not allowed in templates")
        elif operator == "%" and isinstance(left, str) and _WIDTH.search(left):
            raise self._too_big("the formatted text")
        elif operator == "+" and _size(left) + _size(right) > limit:
            raise self._too_big("the joined value")
        return self._check_result(super().call_binop(context, operator, left, right), "the computed value")

    def checked_concat(self, join: Callable, parts: tuple) -> Any:
        if sum(len(str(p)) for p in parts) > self.limits.max_value:
            raise self._too_big("the joined text")
        return join(parts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja's spelling)
        target = getattr(__obj, "__wrapped__", __obj)   # str.format comes wrapped by the sandbox
        name = getattr(target, "__name__", "")
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str) and name in ("format", "format_map"):
            numbers = [a for a in list(args) + list(kwargs.values()) if isinstance(a, int)]
            if _WIDTH.search(owner) or any(n > __self.limits.max_value for n in numbers):
                raise __self._too_big("the formatted text")
        if isinstance(owner, str) and name in _PADDING:
            widths = [a for a in list(args) + list(kwargs.values()) if isinstance(a, int)]
            if any(w > __self.limits.max_value for w in widths):
                raise __self._too_big(f"the padded text ({name})")
        if isinstance(owner, str) and name == "replace" and len(args) >= 2:
            old, new = str(args[0]), str(args[1])
            hits = owner.count(old) if old else len(owner) + 1
            if len(owner) + hits * len(new) > __self.limits.max_value:
                raise __self._too_big("the replaced text")
        if isinstance(owner, str) and name == "join" and args and isinstance(args[0], (list, tuple)):
            if sum(len(str(v)) for v in args[0]) + len(owner) * len(args[0]) > __self.limits.max_value:
                raise __self._too_big("the joined text")
        return __self._check_result(super().call(__context, __obj, *args, **kwargs), f"the result of {name or 'a call'}")


def _budget(seconds: float):
    """A trace function stopping the render once it used `seconds` of this thread's CPU time."""
    deadline = time.thread_time() + seconds

    def tracer(frame: Any, event: str, arg: Any):
        if time.thread_time() > deadline:
            raise _Timeout()
        return tracer
    return tracer


class Renderer:
    """Compiles and renders one kind of template (plain text for names, HTML for descriptions)."""

    COMPILED_MAX = 256   # rules' templates, compiled once per process (compiling costs more than rendering)

    def __init__(self, limits: Limits | None = None, *, html: bool):
        self.limits = limits or Limits()
        self.env = HubSandbox(self.limits, autoescape=html)
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _template(self, source: str) -> Any:
        with self._lock:
            template = self._compiled.get(source)
            if template is not None:
                self._compiled.move_to_end(source)
                return template
        template = self.env.from_string(source)
        with self._lock:
            self._compiled[source] = template
            while len(self._compiled) > self.COMPILED_MAX:
                self._compiled.popitem(last=False)
        return template

    def check(self, source: str, known_names: Iterable[str]) -> None:
        """Refuse a template that is too long, does not parse or uses names the context lacks."""
        if len(source) > self.limits.template_max_chars:
            raise TemplateProblem(f"the template is {len(source)} characters; at most "
                                  f"{self.limits.template_max_chars} are allowed")
        try:
            tree = self.env.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
        unknown = sorted(meta.find_undeclared_variables(tree) - set(known_names) - set(self.env.globals))
        if unknown:
            raise TemplateProblem(f"unknown name {unknown[0]!r}; available: {', '.join(sorted(known_names))}")
        for node in tree.find_all((nodes.Getattr,)):
            if node.attr.startswith("_"):
                raise TemplateProblem(f"access to {node.attr!r} is not allowed in templates")

    def render(self, source: str, context: dict[str, Any]) -> str:
        if len(source) > self.limits.template_max_chars:
            raise TemplateProblem(f"the template is {len(source)} characters; at most "
                                  f"{self.limits.template_max_chars} are allowed")
        try:
            template = self._template(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
        out: list[str] = []
        total = 0
        previous = sys.gettrace()
        sys.settrace(_budget(self.limits.seconds))
        try:
            for chunk in template.generate(context):
                total += len(chunk)
                if total > self.limits.output_max_chars:
                    raise TemplateProblem(f"the output is longer than the limit of "
                                          f"{self.limits.output_max_chars} characters")
                out.append(chunk)
        except _Timeout:
            raise TemplateProblem(f"rendering took longer than the limit of {self.limits.seconds:g} s "
                                  "(a loop too large?)") from None
        except SecurityError as exc:
            raise TemplateProblem(str(exc)) from None
        except TemplateProblem:
            raise
        except OverflowError:
            raise TemplateProblem("a number in the template is too large") from None
        except UndefinedError as exc:
            raise TemplateProblem(str(exc)) from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
                AttributeError) as exc:
            raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
        finally:
            sys.settrace(previous)
        return "".join(out)
