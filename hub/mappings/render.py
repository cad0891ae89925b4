"""User templates (task and project names and descriptions) in a Jinja2 sandbox that refuses, before
running it, any operation whose result would be too large.

An admin's template runs for every matched event, so it must not reach Python internals, run for
ever or exhaust memory. Two layers:
- Here, in the sandbox: attribute access to internals is *refused* (not rendered empty, which would
  hide the attempt); every operator, call, filter and output first bounds the size of what it would
  build (`sizes.py`: text sizes, `%` and `str.format` widths, padding, replace, join, powers) and
  refuses when the bound passes the limit; loop iterations and calls are counted. These refusals
  depend only on the template and the data, never on the machine's speed.
- Around it, in `jail.py` / `pool.py`: the render runs in a child process with an address-space
  limit and a CPU-time budget, so what only shows at run time (many cheap steps that add up, a C call
  nobody foresaw) is stopped too, without freezing the hub's own threads.
Errors are `TemplateProblem`s with one readable line, shown next to the field or on the run."""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import sizes
from .sizes import Oversize, text_size

MAX_VALUE_FACTOR = 4        # an intermediate value may be this many times the output budget
_REMOVED_FILTERS = ("xmlattr", "batch", "slice", "wordwrap", "urlize")
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace", "dict")
# filters that turn their whole input into text: a list of big strings must fit as text before
_STRINGIFYING = frozenset({"string", "e", "escape", "forceescape", "pprint", "tojson", "urlencode", "upper", "lower",
                           "title", "capitalize", "trim", "truncate", "wordcount", "striptags", "safe", "center",
                           "indent", "replace", "format", "float", "int"})


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; the message says why in one line."""


@dataclass(frozen=True)
class Limits:
    template_max_chars: int = 20000
    output_max_chars: int = 65536
    seconds: float = 1.0            # CPU time of one render, enforced on the render process (jail)
    memory_mb: int = 48             # address space a render may add to the render process
    steps: int = 50_000             # loop iterations, calls and filters of one render (the cheapest cost
    #                                 ~10 us each, so the count fires well before the CPU budget)

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        return cls(settings["rules.template_max_chars"], settings["rules.output_max_chars"],
                   settings["rules.render_seconds"], settings["rules.render_memory_mb"])

    @property
    def max_value(self) -> int:
        return self.output_max_chars * MAX_VALUE_FACTOR


def too_big(limits: Limits, what: str) -> TemplateProblem:
    """The refusal of a value larger than `max_value` (also used by the in-process path, direct.py)."""
    return TemplateProblem(f"{what} would be larger than the limit of {limits.max_value} characters")


def output_too_long(limits: Limits) -> TemplateProblem:
    return TemplateProblem(f"the output is longer than the limit of {limits.output_max_chars} characters")


class _Undefined(ChainableUndefined):
    """Missing data renders as nothing (`{{ person.name }}` for a deal without a person)."""

    __slots__ = ()


def _blank_none(value: Any) -> Any:
    """None in the data becomes undefined: it renders empty (never the word `None`, also through `~`,
    `%`, `format` or `join`) and `default('nobody')` replaces it."""
    if value is None:
        return _Undefined()
    if isinstance(value, dict):
        return {k: _blank_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_none(v) for v in value]
    return value


class _CodeGenerator(CodeGenerator):
    """`a ~ b ~ c` is compiled to a direct join; route it through the environment to size-check it
    before it is built (`{% set a = a ~ a %}` doubles per line). A constant `{{ none }}` is escaped
    before `finalize` sees it: blank it here."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData) and node.as_const(frame.eval_ctx) is None:
            return ""
        return super()._output_child_to_const(node, frame, finalize)

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


class HubSandbox(ImmutableSandboxedEnvironment):
    """Also immutable: templates cannot change the lists and dicts they are given."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})
    code_generator_class = _CodeGenerator

    def __init__(self, limits: Limits, *, autoescape: bool):
        super().__init__(autoescape=autoescape, undefined=_Undefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=False, finalize=self._finalize)
        self.limits = limits
        self._cap = limits.max_value
        self._local = threading.local()
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        guards = {"join": self._guard_join, "replace": self._guard_replace, "format": self._guard_format,
                  "center": self._guard_width, "indent": self._guard_indent}
        for name, guard in guards.items():
            self.filters[name] = guard(self.filters[name])
        self.filters = {name: self._checked(fn, name) for name, fn in self.filters.items()}
        self.tests["none"] = lambda value: value is None or isinstance(value, Undefined)

    # -- refusing instead of hiding -------------------------------------------------------------
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed in templates")

    # -- counting -------------------------------------------------------------------------------
    def begin(self) -> None:
        self._local.steps = 0

    def _step(self) -> None:
        steps = getattr(self._local, "steps", 0) + 1
        self._local.steps = steps
        if steps > self.limits.steps:
            raise TemplateProblem(f"the template runs more than {self.limits.steps} loop iterations, calls and "
                                  "filters (a loop too large?)")

    def counted(self, iterable: Any) -> Any:
        """Every `{% for %}` iterates through this (see `_parse`)."""
        for item in iterable:
            self._step()
            yield item

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("counted"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        return tree

    # -- size guards ----------------------------------------------------------------------------
    def _too_big(self, what: str) -> TemplateProblem:
        return too_big(self.limits, what)

    def _fits(self, size: int, what: str, name: str = "") -> None:
        if size > self._cap:
            raise self._too_big(what.format(name))

    def _check_value(self, value: Any, what: str, name: str = "") -> Any:
        """A made value may hold at most `max_value` characters or items (a container's memory is its
        items; its text is checked where text is made: output, `~`, `%`, format, join ...)."""
        if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
            if len(value) > self._cap:
                raise self._too_big(what.format(name))
        elif not sizes.int_bits_ok(value):
            raise TemplateProblem(f"{what.format(name)} would be a number of more than {sizes.MAX_INT_BITS} bits")
        return value

    def _finalize(self, value: Any) -> Any:
        if value is None:
            return ""
        self._fits(text_size(value, self._cap), "the printed value")
        return value

    def _checked(self, fn: Callable, name: str) -> Callable:
        stringifies = name in _STRINGIFYING

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            self._step()
            if stringifies:
                value = next((a for a in args if not isinstance(a, (Context, EvalContext))), None)
                self._fits(text_size(value, self._cap), "the input of the filter {!r}", name)
            return self._check_value(fn(*args, **kwargs), "the result of the filter {!r}", name)
        return run

    def _bounded(self, items: Any, what: str) -> list:
        try:
            return sizes.bounded_items(items, self.limits.max_value)
        except Oversize:
            raise self._too_big(what) from None

    def _guard_join(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
            items = self._bounded(value, "the joined text")
            self._fits(sizes.join_size(d, items, self.limits.max_value), "the joined text")
            return fn(eval_ctx, items, d, attribute)
        return join

    def _guard_replace(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
            text = s if isinstance(s, str) else str(s)
            self._fits(sizes.method_size(text, "replace", (str(old), str(new), count if count is not None else -1),
                                         {}, self.limits.max_value), "the replaced text")
            return fn(eval_ctx, s, old, new, count)
        return replace

    def _guard_format(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
            self._fits(self._percent_size(str(value), kwargs or args), "the formatted text")
            return fn(value, *args, **kwargs)
        return format_filter

    def _guard_width(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def padded(value: Any, width: Any = 80) -> Any:
            if isinstance(width, int):
                self._fits(max(width, 0), "the padded text")
            return fn(value, width)
        return padded

    def _guard_indent(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
            text = str(s)
            pad = width if isinstance(width, int) else len(str(width))
            self._fits(len(text) + (text.count("\n") + 1) * max(pad, 0), "the indented text")
            return fn(s, width, first, blank)
        return indent

    def _percent_size(self, fmt: str, args: Any) -> int:
        try:
            return sizes.percent_size(fmt, args, self.limits.max_value)
        except Oversize:
            return self.limits.max_value + 1

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            if sizes.product_bits(left, right) > sizes.MAX_INT_BITS:
                raise TemplateProblem(f"the product would be a number of more than {sizes.MAX_INT_BITS} bits")
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and sizes.repeat_size(seq, times) > self._cap:
                    raise self._too_big("the repeated value")
        elif operator == "**":
            if sizes.power_bits(left, right) > sizes.MAX_INT_BITS:
                raise TemplateProblem(f"the power would be a number of more than {sizes.MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            self._fits(self._percent_size(left, right), "the formatted text")
        elif operator == "+" and isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
            self._fits(len(left) + len(right), "the joined value")
        return self._check_value(super().call_binop(context, operator, left, right), "the computed value")

    def checked_concat(self, join: Callable, parts: tuple) -> Any:
        parts = tuple("" if p is None else p for p in parts)
        self._fits(sum(text_size(p, self.limits.max_value) for p in parts), "the joined text")
        return join(parts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja's spelling)
        __self._step()
        target = getattr(__obj, "__wrapped__", __obj)   # str.format comes wrapped by the sandbox
        name = getattr(target, "__name__", "") or "a call"
        owner = getattr(target, "__self__", None)
        if isinstance(owner, (str, bytes)):
            if name == "join" and args:
                args = (__self._bounded(args[0], "the joined text"),) + args[1:]
                __self._fits(sizes.join_size(owner, args[0], __self._cap), "the joined text")
            try:
                size = sizes.method_size(owner, name, args, kwargs, __self._cap)
            except Oversize:
                size = __self._cap + 1
            __self._fits(size, "the result of {}", name)
        return __self._check_value(super().call(__context, __obj, *args, **kwargs), "the result of {}", name)


class Renderer:
    """Compiles and renders one kind of template (plain text for names, HTML for descriptions).
    It runs inside the render process (`jail.py`), which adds the CPU and memory budgets."""

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

    def _length(self, source: str) -> None:
        if len(source) > self.limits.template_max_chars:
            raise TemplateProblem(f"the template is {len(source)} characters; at most "
                                  f"{self.limits.template_max_chars} are allowed")

    def check(self, source: str, known_names: Iterable[str]) -> None:
        """Refuse a template that is too long, does not parse or uses names the context lacks."""
        self._length(source)
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
        self._length(source)
        self.env.begin()
        try:
            template = self._template(source)
            out: list[str] = []
            total = 0
            for chunk in template.generate(_blank_none(context)):
                total += len(chunk)
                if total > self.limits.output_max_chars:
                    raise output_too_long(self.limits)
                out.append(chunk)
            return "".join(out)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
        except (SecurityError, UndefinedError) as exc:
            raise TemplateProblem(str(exc)) from None
        except TemplateProblem:
            raise
        except OverflowError:
            raise TemplateProblem("a number in the template is too large") from None
        except RecursionError:
            raise TemplateProblem("the template nests or recurses too deeply") from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
                AttributeError) as exc:
            raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
