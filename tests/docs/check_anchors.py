#!/usr/bin/env python3
"""Checks that every link to an anchor in the given Markdown files names a heading that exists.

usage: check_anchors.py [--expect-broken N] FILE.md [FILE.md ...]

Links checked: `[text](#anchor)` within a file, and `[text](other.md#anchor)` to another Markdown
file by a relative path (its headings are read the same way). Anchors are made from headings as
GitHub makes them: the heading's text without Markdown (code spans, links, emphasis), lowercased,
every character that is not a letter, digit, space, '-' or '_' removed, each space turned into '-';
a repeated anchor gets -1, -2, ... Headings inside fenced code blocks are not headings.

Exit code 0 when every anchor exists, 1 otherwise (each broken link on a line: file:line: link).
--expect-broken N turns it round for the check's own test: exit 0 when exactly N links are broken.
"""

import os
import re
import sys

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]*#[^)\s]*)\)")


def heading_text(markdown):
    """The text a reader sees: links and images reduced to their text, code and emphasis marks gone."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("`", "").replace("*", "")


def slug(text):
    text = heading_text(text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def lines_outside_code(path):
    """(line number, line) of every line outside fenced code blocks."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                yield number, line


def anchors(path):
    seen = {}
    found = set()
    for _, line in lines_outside_code(path):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else "%s-%d" % (base, n))
    return found


def broken_links(path):
    """(line number, link) of each anchor link in `path` that names no heading."""
    cache = {}
    broken = []
    for number, line in lines_outside_code(path):
        # Code spans may show link syntax without being links.
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if "://" in target:
                continue  # another site: not ours to check
            file_part, anchor = target.split("#", 1)
            target_path = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not target_path.endswith(".md") or not os.path.exists(target_path):
                if file_part:
                    broken.append((number, target + " (no such Markdown file)"))
                continue
            if target_path not in cache:
                cache[target_path] = anchors(target_path)
            if anchor not in cache[target_path]:
                broken.append((number, target))
    return broken


def main(argv):
    expected = None
    if len(argv) > 2 and argv[1] == "--expect-broken":
        expected = int(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failures = 0
    links = 0
    for path in argv[1:]:
        if not os.path.exists(path):
            print("%s: no such file" % path, file=sys.stderr)
            return 1
        for number, link in broken_links(path):
            print("%s:%d: broken link %s" % (path, number, link))
            failures += 1
        links += sum(len(LINK.findall(re.sub(r"`[^`]*`", "", l))) for _, l in lines_outside_code(path))
    print("%d anchor link(s) checked in %d file(s), %d broken" % (links, len(argv) - 1, failures))
    if expected is not None:
        return 0 if failures == expected else 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
