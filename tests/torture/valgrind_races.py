"""Reads a helgrind or drd log of c-examples/torture and decides what counts.

Rust's locks (std::sync since 1.62, parking_lot) and crossbeam's channels
synchronise with atomics and futex(2), which helgrind and drd do not model:
every access those locks protect inside libwsc is reported as a "possible
data race" with "Locks held: none". Those reports say nothing, so they are
only counted here, by function. What the tools can judge is the memory the
application owns (torture.c's connection table, the user_data wsc hands
back, the statistics), which torture.c guards with pthread mutexes only, or
not at all where wsc promises order (a connection's callbacks never
overlap): a race on that memory is a real bug in wsc's contract, and fails.

    valgrind_races.py LOG BINARY
"""

import collections
import re
import subprocess
import sys


def app_symbols(binary):
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}


def reports(log):
    """One block per error: helgrind's and drd's headers both start a block."""
    text = re.sub(r"^==\d+== ?", "", open(log).read(), flags=re.M)
    blocks = re.split(r"\n(?=Possible data race|Conflicting |Thread #\d+: |Thread \d+:\n)", text)
    return [b for b in blocks[1:] if not b.startswith("Thread #") or "was created" not in b]


def is_app_memory(report, symbols):
    m = re.search(r'inside data symbol "([^"]+)"', report)
    if m:
        return m.group(1) in symbols
    parts = re.split(r"alloc'd|Allocation context:", report, maxsplit=1)
    if len(parts) < 2:
        return False
    # The frame that called the allocator: application memory if it is the host's.
    for frame in re.findall(r"(?:at|by) 0x[0-9A-F]+: (.*)", parts[1]):
        if re.match(r"(malloc|calloc|realloc|operator new)\b|\?\?\? \(in .*vgpreload", frame):
            continue
        return "torture.c" in frame
    return False


def first_wsc_function(report):
    for m in re.finditer(r"(?:at|by) 0x[0-9A-F]+: (\S+?)[ <(]", report):
        if "wsc::" in m.group(1) or m.group(1).startswith("wsc"):
            return m.group(1)
    m = re.search(r"(?:at|by) 0x[0-9A-F]+: (\S+)", report)
    return m.group(1) if m else "?"


def main():
    log, binary = sys.argv[1], sys.argv[2]
    symbols = app_symbols(binary)
    app, internal = [], collections.Counter()
    for r in reports(log):
        if r.startswith(("Possible data race", "Conflicting ")):
            if is_app_memory(r, symbols):
                app.append(r)
            else:
                internal[first_wsc_function(r)] += 1
        elif "torture.c" in r.split("\n\n", 1)[0]:
            app.append(r)  # pthread misuse or lock-order problem in the host's view
    print("  %d report(s) inside libwsc on memory guarded by Rust's futex-based locks "
          "(invisible to the tool, not judged); most frequent:" % sum(internal.values()))
    for fn, n in internal.most_common(5):
        print("    %4d  %s" % (n, fn))
    for r in app[:3]:
        print("  APPLICATION-VISIBLE RACE:\n" + "\n".join(r.splitlines()[:60]))
    print("  %d race(s) on application memory" % len(app))
    return 1 if app else 0


if __name__ == "__main__":
    sys.exit(main())
