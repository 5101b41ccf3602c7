#!/usr/bin/env python3
"""Structure figures for the Lockbox tree: largest files, longest functions,
module import circles per crate.

Usage:
    python3 scripts/metrics.py [files|functions|undocumented|circles|all] [--limit N] [--min-lines N]

Reads Rust sources under crates/*/src only (tests and fuzz targets are not
counted). A function's length is counted from its `fn` line to its closing
brace, found by brace matching that skips strings, chars and comments. A
module edge A -> B is any `crate::B` path (or `super::B` that resolves to a
top-level module) in a file of module A; a circle is a strongly connected
set of two or more top-level modules.
"""

import os
import re
import sys

# the tree to measure: the current directory when it holds crates/, else this script's repository
ROOT = os.getcwd() if os.path.isdir(os.path.join(os.getcwd(), "crates")) else os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def sources():
    crates = os.path.join(ROOT, "crates")
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        for dirpath, _dirs, files in os.walk(src):
            for f in sorted(files):
                if f.endswith(".rs"):
                    yield crate, os.path.join(dirpath, f)


def strip_code(text):
    """Replace string, char and comment contents by spaces, keep newlines."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def functions(path):
    with open(path, encoding="utf-8") as fh:
        raw = fh.read()
    code = strip_code(raw)
    lines = code.split("\n")
    result = []
    for idx, line in enumerate(lines):
        m = FN_RE.match(line)
        if not m:
            continue
        # find the opening brace (or a ';' for a declaration)
        depth, started, end = 0, False, None
        for j in range(idx, len(lines)):
            for ch in lines[j]:
                if not started and ch == ";" and depth == 0:
                    end = -1
                    break
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
                    if started and depth == 0:
                        end = j
                        break
            if end is not None:
                break
        if end is None or end < 0:
            continue
        result.append((m.group(1), idx + 1, end - idx + 1))
    return result


def in_test_module(path, line_no, cache={}):
    """True when line_no lies inside a #[cfg(test)] module of the file."""
    if path not in cache:
        with open(path, encoding="utf-8") as fh:
            lines = strip_code(fh.read()).split("\n")
        ranges = []
        for i, l in enumerate(lines):
            if "#[cfg(test)]" in l:
                depth, started = 0, False
                for j in range(i, len(lines)):
                    for ch in lines[j]:
                        if ch == "{":
                            depth += 1
                            started = True
                        elif ch == "}":
                            depth -= 1
                    if started and depth == 0:
                        ranges.append((i + 1, j + 1))
                        break
        cache[path] = ranges
    return any(a <= line_no <= b for a, b in cache[path])


def top_module(crate_src, path):
    rel = os.path.relpath(path, crate_src)
    parts = rel.split(os.sep)
    if len(parts) == 1:
        name = parts[0][:-3]
        return None if name in ("lib", "main") else name
    return parts[0]


def circles():
    crates = os.path.join(ROOT, "crates")
    found = []
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        mods = set()
        for dirpath, _d, files in os.walk(src):
            for f in files:
                if f.endswith(".rs"):
                    m = top_module(src, os.path.join(dirpath, f))
                    if m:
                        mods.add(m)
        edges = {m: set() for m in mods}
        for dirpath, _d, files in os.walk(src):
            for f in files:
                if not f.endswith(".rs"):
                    continue
                path = os.path.join(dirpath, f)
                a = top_module(src, path)
                if not a:
                    continue
                with open(path, encoding="utf-8") as fh:
                    code = strip_code(fh.read())
                lines = code.split("\n")
                # drop #[cfg(test)] modules: tests may reach anywhere
                keep = [l for i, l in enumerate(lines) if not in_test_module(path, i + 1)]
                code = "\n".join(keep)
                targets = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code))
                for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
                    targets |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
                depth_one = os.path.dirname(path) == src
                if depth_one:
                    targets |= set(re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", code))
                for b in targets:
                    if b in mods and b != a:
                        edges[a].add(b)
        # Tarjan
        index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(edges[v]):
                if w not in index:
                    strong(w)
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
                    comps.append(sorted(comp))

        sys.setrecursionlimit(10000)
        for v in sorted(mods):
            if v not in index:
                strong(v)
        for comp in comps:
            found.append((crate, comp))
    return found


def main():
    args = sys.argv[1:]
    what = args[0] if args and not args[0].startswith("--") else "all"
    limit = 15
    min_lines = 80
    if "--limit" in args:
        limit = int(args[args.index("--limit") + 1])
    if "--min-lines" in args:
        min_lines = int(args[args.index("--min-lines") + 1])
    if what in ("files", "all"):
        sizes = []
        for _crate, path in sources():
            with open(path, encoding="utf-8") as fh:
                sizes.append((sum(1 for _ in fh), os.path.relpath(path, ROOT)))
        sizes.sort(reverse=True)
        over = [s for s in sizes if s[0] > 600]
        print(f"files: {len(sizes)} source files, {sum(s for s, _ in sizes)} lines, {len(over)} over 600 lines")
        for n, p in sizes[:limit]:
            print(f"  {n:5d}  {p}")
    if what in ("functions", "all"):
        fns = []
        for _crate, path in sources():
            for name, line, length in functions(path):
                if in_test_module(path, line):
                    continue
                fns.append((length, f"{os.path.relpath(path, ROOT)}:{line}", name))
        fns.sort(reverse=True)
        long = [f for f in fns if f[0] > min_lines]
        print(f"functions: {len(fns)} outside tests, {len(long)} over {min_lines} lines")
        for length, where, name in long[:max(limit, 0)] if limit else long:
            print(f"  {length:5d}  {where}  {name}")
    if what in ("undocumented", "all"):
        missing = []
        item = re.compile(r"^\s*pub\s+(?:async\s+|const\s+|unsafe\s+)*(fn|struct|enum|trait|const|static|type|union)\s+([A-Za-z_][A-Za-z0-9_]*)")
        for _crate, path in sources():
            if "/cli/src/" in path:
                continue  # a binary: missing_docs does not apply
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            for i, line in enumerate(lines):
                m = item.match(line)
                if not m or in_test_module(path, i + 1):
                    continue
                j = i - 1
                while j >= 0 and (lines[j].strip().startswith("#[") or lines[j].strip() == "" and False):
                    j -= 1
                prev = lines[j].strip() if j >= 0 else ""
                if not (prev.startswith("///") or prev.startswith("#[doc") or prev.endswith("*/")):
                    missing.append(f"{os.path.relpath(path, ROOT)}:{i + 1} {m.group(1)} {m.group(2)}")
        print(f"undocumented: {len(missing)} public items without a doc comment in library crates (heuristic: `pub` fn/struct/enum/trait/const/static/type not preceded by ///)")
        for m in missing[:limit]:
            print(f"  {m}")
    if what in ("circles", "all"):
        found = circles()
        print(f"circles: {len(found)} (strongly connected top-level modules inside one crate)")
        for crate, comp in found:
            print(f"  {crate}: {' <-> '.join(comp)}")


if __name__ == "__main__":
    main()
