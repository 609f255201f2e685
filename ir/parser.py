"""Read the text form written by `printer.py` back into a Graph."""
from __future__ import annotations

import inspect
import json
import re

import sympy
import torch.utils._sympy.functions as torch_sympy_functions

from .errors import ParseError, UnsupportedOpError
from .graph import Graph, Loc, Node, Value
from .registry import get_op
from .types import DTYPES, ScalarType, TensorType, sym, torch_dtype

_TOKEN = re.compile(r"""
   (?P<ws>\s+|//[^\n]*)
  |(?P<string>"(?:[^"\\]|\\.)*")
  |(?P<value>%[A-Za-z0-9_.]+)
  |(?P<gname>@[A-Za-z0-9_.]+)
  |(?P<arrow>->)
  |(?P<number>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+))
  |(?P<ident>-?[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?(?:\.[A-Za-z0-9_]+)?)
  |(?P<punct>[()\[\]{},:=?])
""", re.VERBOSE)

# Functions a symbolic dim may use: torch's integer sympy functions, then sympy's own.
_SYMPY_FUNCS = {n: f for n, f in vars(torch_sympy_functions).items()
                if inspect.isclass(f) and issubclass(f, sympy.Basic)}
_SYMPY_FUNCS.setdefault("Max", sympy.Max)
_SYMPY_FUNCS.setdefault("Min", sympy.Min)

# sympify evaluates its input as Python, so a symbolic dim is checked against this
# grammar first: names, integers, arithmetic and comparisons, brackets and commas.
# No quotes, dots after names, subscripts or lambdas: IR text from a file can run no code.
_SYM_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\*\*|//|[-+*/%(),<>=!&|~]")

# sympy names a printed dim may contain besides _SYMPY_FUNCS (sympify resolves them itself).
_SYMPY_NAMES = frozenset({"Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "Abs", "floor",
                          "ceiling", "Mod", "True", "False", "oo", "Integer", "Rational"})

# Deeper literal nesting than any printed graph has; refused before Python's stack runs out.
MAX_NESTING = 200


class _Lexer:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self._peeked = None

    def _scan(self):
        while self.pos < len(self.text):
            m = _TOKEN.match(self.text, self.pos)
            if not m:
                ch = self.text[self.pos]
                self.error("unterminated string: no closing '\"'" if ch == '"' else
                           f"unexpected character {ch!r}", self.pos)
            start, self.pos = self.pos, m.end()
            if m.lastgroup != "ws":
                return (m.lastgroup, m.group(), start)
        return ("eof", "", self.pos)

    def peek(self):
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self):
        tok = self.peek()
        self._peeked = None
        return tok

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] in ("punct", "arrow", "ident"):
            self.next()
            return True
        return False

    def expect(self, text: str):
        tok = self.next()
        if tok[1] != text:
            self.error(f"expected {text!r}, found {tok[1]!r}" if tok[0] != "eof" else f"expected {text!r}, found end of text", tok[2])
        return tok

    def expect_kind(self, kind: str, what: str):
        tok = self.next()
        if tok[0] != kind:
            self.error(f"expected {what}, found {tok[1]!r}" if tok[0] != "eof" else f"expected {what}, found end of text", tok[2])
        return tok

    def raw_parenthesized(self) -> tuple[str, int]:
        """The raw text of a balanced `( ... )` starting at the next token."""
        tok = self.next()
        if tok[1] != "(":
            self.error(f"expected '(', found {tok[1]!r}", tok[2])
        start, depth, i = tok[2], 1, tok[2] + 1
        while i < len(self.text) and depth:
            depth += {"(": 1, ")": -1}.get(self.text[i], 0)
            i += 1
        if depth:
            self.error("unbalanced parenthesis", start)
        self.pos, self._peeked = i, None
        return self.text[start + 1:i - 1], start

    def error(self, message: str, offset: int):
        line = self.text.count("\n", 0, offset) + 1
        col = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        lines = self.text.splitlines()
        src = lines[line - 1] if line <= len(lines) else ""    # the end of text may follow a last newline
        src = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in src)   # binary input: no raw control bytes
        if len(src) > 120:      # a window around the column, not a whole generated line
            lo = max(0, col - 60)
            src = ("..." if lo else "") + src[lo:lo + 120] + ("..." if lo + 120 < len(src) else "")
        raise ParseError(f"{message}", where=f"line {line}, column {col}: {src.strip()}")


class _Parser:
    def __init__(self, text: str, constants):
        self.lx = _Lexer(text)
        self.symbols: dict[str, tuple] = {}
        self.constants = constants
        self.depth = 0

    # -- types and dims -------------------------------------------------------
    def _check_sym_text(self, raw: str, offset: int) -> None:
        pos = 0
        while pos < len(raw):
            m = _SYM_TOKEN.match(raw, pos)
            if not m:
                self.lx.error(f"bad symbolic expression {raw!r}: unexpected {raw[pos]!r} (a dim expression holds "
                              "symbols, integers, + - * / // % ** and functions such as FloorDiv)", offset)
            word = m.group()
            if (word[0].isalpha() or word[0] == "_") and word not in self.symbols and \
                    word not in _SYMPY_FUNCS and word not in _SYMPY_NAMES:
                if word.startswith("_") or not word.isidentifier():
                    self.lx.error(f"bad symbolic expression {raw!r}: {word!r} is not a symbol or dim function", offset)
                self.lx.error(f"undeclared symbol(s) {word} in {raw!r}; declare them in `symbols {{...}}`", offset)
            pos = m.end()

    def sym_expr(self, raw: str, offset: int):
        self._check_sym_text(raw, offset)
        names = {n: sym(n) for n in self.symbols}
        try:
            expr = sympy.sympify(raw, locals={**_SYMPY_FUNCS, **names})
        except Exception as e:  # sympify reports bad syntax as several exception types
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            self.lx.error(f"bad symbolic expression {raw!r}: {first}", offset)
        if not isinstance(expr, sympy.Expr):
            self.lx.error(f"bad symbolic expression {raw!r}: not an integer expression", offset)
        undeclared = sorted(s.name for s in expr.free_symbols if s.name not in self.symbols)
        if undeclared:
            self.lx.error(f"undeclared symbol(s) {', '.join(undeclared)} in {raw!r}; declare them in `symbols {{...}}`", offset)
        return int(expr) if expr.is_Integer else expr

    def dim(self):
        kind, text, off = self.lx.peek()
        if kind == "number" and "." not in text and "e" not in text.lower():
            self.lx.next()
            if int(text) < 0:
                self.lx.error(f"negative size {text} in a shape", off)
            return int(text)
        if kind == "ident":
            self.lx.next()
            if text not in self.symbols:
                self.lx.error(f"undeclared symbol {text!r} in a shape; declare it in `symbols {{...}}`", off)
            return sym(text)
        if text == "(":
            raw, off = self.lx.raw_parenthesized()
            return self.sym_expr(raw, off)
        self.lx.error(f"expected a dim (int, symbol or parenthesised expression), found {text!r}", off)

    def type(self):
        kind, text, off = self.lx.expect_kind("ident", "a type")
        if text not in DTYPES:
            self.lx.error(f"unknown dtype {text!r}; known: {', '.join(DTYPES)}", off)
        if not self.lx.accept("["):
            return ScalarType(text)
        shape = []
        if not self.lx.accept("]"):
            shape.append(self.dim())
            while self.lx.accept(","):
                shape.append(self.dim())
            self.lx.expect("]")
        return TensorType(tuple(shape), text)

    # -- literals -------------------------------------------------------------
    def literal(self, scope: dict[str, Value]):
        kind, text, off = self.lx.peek()
        if kind == "value":
            self.lx.next()
            name = text[1:]
            if name not in scope:
                self.lx.error(f"use of undefined value %{name}", off)
            return scope[name]
        if kind == "number":
            self.lx.next()
            return float(text) if ("." in text or "e" in text.lower()) else int(text)
        if kind == "string":
            self.lx.next()
            return json.loads(text)
        if text == "[":
            self.lx.next()
            self.depth += 1
            if self.depth > MAX_NESTING:
                self.lx.error(f"lists nested more than {MAX_NESTING} deep", off)
            items = []
            if not self.lx.accept("]"):
                items.append(self.literal(scope))
                while self.lx.accept(","):
                    items.append(self.literal(scope))
                self.lx.expect("]")
            self.depth -= 1
            return items
        if text == "(":
            raw, off = self.lx.raw_parenthesized()
            return self.sym_expr(raw, off)
        if kind == "ident":
            self.lx.next()
            keywords = {"true": True, "false": False, "none": None, "inf": float("inf"),
                        "-inf": float("-inf"), "nan": float("nan")}
            if text in keywords:
                return keywords[text]
            if text in DTYPES:
                return torch_dtype(text)
            if text in self.symbols:
                return sym(text)
            self.lx.error(f"unknown name {text!r} (not a keyword, dtype or declared symbol)", off)
        self.lx.error(f"expected an argument, found {text!r}", off)

    # -- graph ----------------------------------------------------------------
    def graph(self, top: bool) -> Graph:
        self.lx.expect("graph")
        g = Graph(self.lx.expect_kind("gname", "a graph name like @main")[1][1:])
        scope: dict[str, Value] = {}
        self.lx.expect("(")
        pending_inputs = []
        if not self.lx.accept(")"):
            while True:
                tok = self.lx.expect_kind("value", "an input like %x")
                self.lx.expect(":")
                pending_inputs.append((tok, self._deferred_type()))
                if not self.lx.accept(","):
                    break
            self.lx.expect(")")
        self.lx.expect("->")
        self.lx.expect("(")
        out_types = []
        if not self.lx.accept(")"):
            out_types.append(self._deferred_type())
            while self.lx.accept(","):
                out_types.append(self._deferred_type())
            self.lx.expect(")")
        self.lx.expect("{")
        if top and self.lx.peek()[1] == "symbols":
            self.symbols_block()
        g.symbols = dict(self.symbols) if top else {}
        for tok, raw in pending_inputs:
            self.define(g, scope, tok, self._resolve_type(raw), is_input=True)
        while self.lx.peek()[1] != "return":
            self.statement(g, scope)
        self.lx.expect("return")
        outs = []
        if self.lx.peek()[0] == "value":
            outs.append(self.literal(scope))
            while self.lx.accept(","):
                outs.append(self.literal(scope))
        self.lx.expect("}")
        declared = [self._resolve_type(t) for t in out_types]
        if [v.type for v in outs] != declared:
            self.lx.error(f"graph @{g.name} declares outputs ({', '.join(map(str, declared))}) but returns "
                          f"({', '.join(str(v.type) for v in outs)})", self.lx.pos - 1)
        g.outputs = outs
        if self.constants is not None:
            g.constants = self.constants
        return g

    # Types in the header may use symbols declared later in the body, so the
    # header's types are kept as raw spans and read once the symbols are known.
    def _deferred_type(self):
        start = self.lx.peek()[2]
        depth = 0
        while True:
            kind, text, _ = self.lx.peek()
            if kind == "eof":
                self.lx.error("unterminated type", start)
            if text == "[":
                depth += 1
            elif text == "]":
                depth -= 1
                if depth == 0:
                    self.lx.next()
                    break
            elif depth == 0 and text in (",", ")"):
                break
            if text == "(" and depth > 0:
                self.lx.raw_parenthesized()
                continue
            self.lx.next()
        return start

    def _resolve_type(self, start):
        sub = _Parser.__new__(_Parser)
        sub.lx = _Lexer(self.lx.text)
        sub.lx.pos = start
        sub.symbols = self.symbols
        sub.constants = self.constants
        return sub.type()

    def symbols_block(self):
        self.lx.expect("symbols")
        self.lx.expect("{")
        if not self.lx.accept("}"):
            while True:
                name = self.lx.expect_kind("ident", "a symbol name")[1]
                self.lx.expect(":")
                self.lx.expect("[")
                lo = int(self.lx.expect_kind("number", "a lower bound")[1])
                self.lx.expect(",")
                hi_tok = None if self.lx.peek()[1] == "?" else self.lx.peek()
                hi = None if self.lx.accept("?") else int(self.lx.expect_kind("number", "an upper bound or ?")[1])
                self.lx.expect("]")
                if hi is not None and hi < lo:
                    self.lx.error(f"symbol {name} has the empty range [{lo}, {hi}]", hi_tok[2])
                self.symbols[name] = (lo, hi)
                if not self.lx.accept(","):
                    break
            self.lx.expect("}")

    def define(self, g: Graph, scope, tok, type_, is_input=False, producer=None) -> Value:
        name = tok[1][1:]
        if name in scope:
            self.lx.error(f"value %{name} is defined twice", tok[2])
        g._names.add(name)
        v = Value(name, type_)
        if is_input:
            v.index = len(g.inputs)
            g.inputs.append(v)
        scope[name] = v
        return v

    def statement(self, g: Graph, scope):
        outs_tok = []
        while True:
            tok = self.lx.expect_kind("value", "a result like %0 or 'return'")
            self.lx.expect(":")
            outs_tok.append((tok, self.type()))
            if not self.lx.accept(","):
                break
        self.lx.expect("=")
        kind, opname, op_off = self.lx.expect_kind("ident", "an op name")
        try:
            opdef = get_op(opname)
        except UnsupportedOpError as e:
            self.lx.error(e.message + (f" ({e.hint})" if e.hint else ""), op_off)
        args = self.call_args(opdef, scope, op_off)
        loc = None
        if self.lx.accept("loc"):
            self.lx.expect("(")
            file = json.loads(self.lx.expect_kind("string", "a file name")[1])
            self.lx.expect(":")
            loc = Loc(file, int(self.lx.expect_kind("number", "a line number")[1]))
            self.lx.expect(")")
        regions = []
        if self.lx.accept("{"):
            while self.lx.peek()[1] == "graph":
                regions.append(self.graph(top=False))
            self.lx.expect("}")
        outs = []
        for tok, t in outs_tok:
            if tok[1][1:] in scope:
                self.lx.error(f"value {tok[1]} is defined twice", tok[2])
            outs.append(Value(tok[1][1:], t))
        try:
            node = Node(opname, opdef.normalize_args(args), outs, loc, regions)
        except Exception as e:  # bad parameter names surface here
            self.lx.error(str(e), op_off)
        for v in outs:
            g._names.add(v.name)
            scope[v.name] = v
        node.graph = g
        g.nodes.append(node)

    def call_args(self, opdef, scope, op_off) -> dict:
        self.lx.expect("(")
        positional = [p for p in opdef.params if not p.kw_only]
        args, i = {}, 0
        if self.lx.accept(")"):
            return args
        while True:
            kind, text, off = self.lx.peek()
            if kind == "ident" and self._is_named_arg():
                self.lx.next()
                self.lx.expect("=")
                if text in args:
                    self.lx.error(f"argument {text!r} given twice", off)
                try:
                    opdef.param(text)
                except Exception as e:
                    self.lx.error(str(e), off)
                args[text] = self.literal(scope)
            else:
                if i >= len(positional):
                    self.lx.error(f"too many positional arguments for {opdef.name}", off)
                args[positional[i].name] = self.literal(scope)
                i += 1
            if not self.lx.accept(","):
                break
        self.lx.expect(")")
        return args

    def _is_named_arg(self) -> bool:
        m = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=").match(self.lx.text, self.lx.peek()[2])
        return m is not None and not self.lx.text[m.end():m.end() + 1] == "="


def parse(text: str, constants: dict | None = None) -> Graph:
    """Read a graph from its text form. `constants` supplies the tensors that
    `constant` nodes refer to (the text holds only their names and types)."""
    if not isinstance(text, str):
        raise ParseError(f"parse takes IR text (a str), not {type(text).__name__}")
    p = _Parser(text, constants)
    try:
        g = p.graph(top=True)
    except RecursionError:      # regions or brackets nested past Python's stack
        p.lx.error("the text is nested too deeply to parse", p.lx.pos)
    kind, tok, off = p.lx.peek()
    if kind != "eof":
        p.lx.error(f"unexpected text after the graph: {tok!r}", off)
    return g
