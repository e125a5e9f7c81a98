"""The features × clients matrix of docs/compatibility.md, from the runner's
per-client outputs (WORK/<client>/out.log, lines `ok   <check>`).

Usage: matrix.py (--check|--update) DOC WORK CLIENT...
"""
import os
import re
import sys

START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"


def results(work, client):
    path = os.path.join(work, client, "out.log")
    passed, failed = [], []
    if os.path.exists(path):
        for line in open(path, encoding="utf-8", errors="replace"):
            if line.startswith("ok   "):
                passed.append(line[5:].strip())
            elif line.startswith("FAIL "):
                failed.append(line[5:].split(":", 1)[0].strip())
    return passed, failed


def table(work, clients):
    outcome = {c: results(work, c) for c in clients}
    rows = []
    for c in clients:
        for name in outcome[c][0] + outcome[c][1]:
            if name not in rows:
                rows.append(name)
    short = [c.replace("python-", "py ").replace("node-", "node ").replace("_", " ") for c in clients]
    lines = ["| check | " + " | ".join(short) + " |", "|---|" + "---|" * len(clients)]
    for name in rows:
        cells = []
        for c in clients:
            passed, failed = outcome[c]
            cells.append("✓" if name in passed else "✗" if name in failed else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    mode, doc, work, clients = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    text = open(doc, encoding="utf-8").read()
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    if not match:
        sys.exit(f"{doc}: no {START} … {END} section")
    fresh = table(work, clients)
    if mode == "--update":
        open(doc, "w", encoding="utf-8").write(text[: match.start(1)] + fresh + text[match.end(1):])
    elif match.group(1) != fresh:
        import difflib
        sys.stderr.writelines(difflib.unified_diff(
            match.group(1).splitlines(True), fresh.splitlines(True), "docs", "results"))
        sys.exit(1)


if __name__ == "__main__":
    main()
