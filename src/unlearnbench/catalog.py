"""What is registered, read without importing torch: methods, their hyperparameters and provenance, and models.

Planning (``snakemake -n``: the config checks, run enumeration) must not load torch. The registries themselves
(``methods.registry``, ``models``) live with torch code, so this module reads the same facts from the source: the
``@register_method`` / ``@register_model`` functions of ``methods/*.py`` and ``models.py``, their signatures
(names, literal defaults, annotations), the decorator's ``name``, ``scenarios``, ``paper`` and ``needs``. A
test (``tests/test_catalog.py``) compares this reading with the imported registries for every entry, so the two
cannot drift. Rules for a method's source: defaults and decorator arguments are literals, a ``Paper``/``Needs``
call with literal arguments, or a module-level name bound to one; annotations use ``values.VOCABULARY``.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from . import UserError
from .splits import KINDS
from .values import check_param

PACKAGE = Path(__file__).parent


@dataclass(frozen=True)
class Paper:
    """Where a method comes from: short citation, arXiv id, title, official code and what of it is implemented."""

    cite: str
    title: str
    arxiv: str | None = None
    code: str | None = None  # the official repository, owner/name on GitHub
    implements: str = ""  # equations / algorithm steps implemented here


@dataclass(frozen=True)
class Needs:
    """An experiment key a method needs (e.g. ``mnemonic``), unless its hyperparameter ``unless`` is non-zero."""

    key: str
    unless: str | None = None
    hint: str = ""


class Param(NamedTuple):
    default: object
    annotation: str | None  # the annotation's source text, normalised (``values.constraint_of`` reads it)


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its function (``None`` when read from source), hyperparameters and provenance."""

    name: str
    params: dict[str, Param]
    scenarios: tuple[str, ...] = KINDS
    paper: Paper | None = None
    needs: tuple[Needs, ...] = ()
    module: str = ""
    fn: Callable | None = field(default=None, compare=False, repr=False)

    def check(self, hparams: dict, context: dict | None = None, where: str | None = None) -> None:
        """Names, values (types, options, ranges) and, with ``context`` (the experiment), its ``needs``."""
        where = where or f"method {self.name!r}"
        unknown = sorted(set(hparams) - set(self.params))
        if unknown:
            raise UserError(f"{where} has no hyperparameter(s) {unknown}; valid: {', '.join(self.params) or 'none'}")
        for key, value in hparams.items():
            check_param(where, key, value, self.params[key].default, self.params[key].annotation)
        for need in self.needs if context is not None else ():
            waived = need.unless is not None and hparams.get(need.unless, self.params[need.unless].default)
            if not context.get(need.key) and not waived:
                hint = f"; {need.hint}" if need.hint else ""
                raise UserError(f"{where} needs the experiment's {need.key!r}{hint}")


def normalise(annotation) -> str | None:
    """An annotation's source text in one spelling (``ast.unparse``); ``None`` where there is none."""
    if annotation is None:
        return None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return ast.unparse(ast.parse(text, mode="eval"))


# ----------------------------------------------------------------------------------------------------------------
# Reading the source


def _evaluate(node: ast.AST, names: dict):
    """A literal, a ``Paper``/``Needs`` call with literal arguments, a tuple of those, or a known module name."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_evaluate(e, names) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Paper", "Needs"):
        cls = Paper if node.func.id == "Paper" else Needs
        kwargs = {k.arg: _evaluate(k.value, names) for k in node.keywords}
        return cls(*(_evaluate(a, names) for a in node.args), **kwargs)
    return ast.literal_eval(node)


def _module_names(tree: ast.Module) -> dict:
    names = {"KINDS": KINDS}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                names[stmt.targets[0].id] = _evaluate(stmt.value, names)
            except (ValueError, TypeError, SyntaxError):
                pass
    return names


def _signature(fn: ast.FunctionDef, skip: int) -> dict[str, Param]:
    """Parameters after the first ``skip`` positional ones, with their literal defaults and annotations."""
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    pairs = list(zip(positional, defaults))[skip:] + list(zip(a.kwonlyargs, a.kw_defaults))
    return {arg.arg: Param(ast.literal_eval(d) if d is not None else None,
                           normalise(ast.unparse(arg.annotation)) if arg.annotation else None) for arg, d in pairs}


def _registered(tree: ast.Module, decorator: str):
    """``(function node, decorator keyword arguments as nodes)`` for every function decorated by ``decorator``."""
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if isinstance(dec, ast.Name) and dec.id == decorator:
                yield node, {}
            elif isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id == decorator:
                yield node, {k.arg: k.value for k in dec.keywords}


def _imported_methods() -> set[str]:
    """The modules ``methods/__init__.py`` imports with ``from . import ...`` (the ones that register methods)."""
    tree = ast.parse((PACKAGE / "methods" / "__init__.py").read_text())
    return {alias.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1
            and node.module is None for alias in node.names}


@functools.cache
def method_entries() -> dict[str, MethodEntry]:
    """Every method registered in ``methods/*.py``, read from the source (no function: ``fn`` is ``None``)."""
    entries, imported = {}, _imported_methods()
    for path in sorted((PACKAGE / "methods").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _module_names(tree)
        for fn, kw in _registered(tree, "register_method"):
            if path.stem not in imported:  # jobs import the package: an unimported module registers nothing there
                raise UserError(f"methods/{path.name} registers {fn.name!r} but methods/__init__.py does not import "
                                f"it: add {path.stem} to its `from . import (...)` list")
            args = {k: _evaluate(v, names) for k, v in kw.items()}
            name = args.pop("name", fn.name)
            entries[name] = MethodEntry(name, _signature(fn, 2), scenarios=tuple(args.get("scenarios", KINDS)),
                                        paper=args.get("paper"), needs=tuple(args.get("needs", ())),
                                        module=f"unlearnbench.methods.{path.stem}")
    return entries


@functools.cache
def model_options() -> dict[str, dict[str, Param]]:
    """Every model registered in ``models.py`` and its options (the builder's parameters after the data set)."""
    tree = ast.parse((PACKAGE / "models.py").read_text())
    return {fn.name: _signature(fn, 1) for fn, _ in _registered(tree, "register_model")}


# ----------------------------------------------------------------------------------------------------------------
# Queries the planning side uses


def method_entry(name: str) -> MethodEntry:
    entries = method_entries()
    if name not in entries:
        raise UserError(f"unknown method {name!r}; registered methods: {', '.join(sorted(entries))}")
    return entries[name]


def supports(name: str, scenario_kind: str) -> bool:
    return scenario_kind in method_entry(name).scenarios


def hyperparameters(name: str) -> dict:
    """The method's hyperparameters and their defaults."""
    return {k: p.default for k, p in method_entry(name).params.items()}


def check_model_options(where: str, name: str, options: dict) -> None:
    models = model_options()
    if name not in models:
        raise UserError(f"{where}: unknown model {name!r}; valid models: {', '.join(models)}")
    params = models[name]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise UserError(f"{where}: model {name!r} has no option(s) {unknown}; valid: {', '.join(params)}")
    for key, value in options.items():
        check_param(f"{where} model", key, value, params[key].default, params[key].annotation)


def methods_table() -> str:
    """The README's methods table (Markdown), from the registered provenance; ``tests/test_catalog.py`` checks it."""
    rows = ["| method | paper | arXiv | official code | implements | scenarios | file |", "|---" * 7 + "|"]
    for name, e in sorted(method_entries().items(), key=lambda kv: (kv[1].module, kv[0])):
        p = e.paper
        arxiv = f"[{p.arxiv}](https://arxiv.org/abs/{p.arxiv})" if p and p.arxiv else "—"
        code = f"[{p.code}](https://github.com/{p.code})" if p and p.code else "—"
        scenarios = "all" if e.scenarios == KINDS else ", ".join(e.scenarios)
        scenarios += "".join(f"; needs `{n.key}`" + (f" (or `{n.unless}`)" if n.unless else "") for n in e.needs)
        path = e.module.removeprefix("unlearnbench.").replace(".", "/") + ".py"
        rows.append(f"| `{name}` | {p.cite + ': ' + p.title if p else '—'} | {arxiv} | {code} | "
                    f"{p.implements if p else ''} | {scenarios} | `{path}` |")
    return "\n".join(rows)
