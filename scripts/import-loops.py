#!/usr/bin/env python3
"""Fails when files of one crate import each other in a loop.

A file's module imports another through `crate::` and `super::` paths. A
module and its own descendants are one room (a folder's `mod.rs` holds what
its files share), so only imports between modules where neither contains
the other are edges. Prints every loop found; exits 1 if there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\}", re.S)


def module_of(src: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def edges_of(text: str, module: tuple, modules: set) -> set:
    found = set()
    paths = []
    for m in USE_GROUP.finditer(text):
        for item in m.group(3).split(","):
            item = item.strip().split(" as ")[0].strip()
            if item:
                paths.append((m.group(1), m.group(2) + "::" + item.replace("::{", "::").rstrip("}")))
    for m in PATH.finditer(text):
        paths.append((m.group(1), m.group(2)))
    for root, rest in paths:
        names = [p for p in rest.split("::") if p]
        start = () if root == "crate" else module[:-1]
        while names and names[0] == "super":
            start = start[:-1]
            names = names[1:]
        target = start
        for name in names:
            if target + (name,) in modules:
                target = target + (name,)
            else:
                break
        related = target[: len(module)] == module or module[: len(target)] == target
        if not related:
            found.add(target)
    return found


def loops(graph: dict) -> list:
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    failed = False
    for src in sorted(ROOT.glob("crates/*/src")):
        files = [f for f in src.rglob("*.rs")]
        modules = {module_of(src, f) for f in files}
        graph = {}
        for f in files:
            module = module_of(src, f)
            graph.setdefault(module, set()).update(edges_of(f.read_text(), module, modules))
        for comp in loops(graph):
            failed = True
            names = ", ".join("::".join(m) or "(crate root)" for m in comp)
            print(f"{src.parent.name}: files import each other in a loop: {names}")
    if not failed:
        print("no import loops")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
