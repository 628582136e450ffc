"""Summarises an Autobahn|Testsuite report (wsc as a client or as a server)
and compares it with the committed per-case expectations, so a regression
shows case by case.

    summary.py INDEX_JSON EXPECTED_JSON [--update]

Exit status 1 when a case outside the excluded ones (12.*, 13.*:
permessage-deflate, which wsc does not offer) is FAILED or UNIMPLEMENTED,
when a case is missing, or when a case's result differs from EXPECTED_JSON.
An expected value may be a list of results where the suite's verdict
depends on timing (see the notes in the file). --update rewrites
EXPECTED_JSON from this run (review the diff before committing it).
"""

import collections
import json
import sys

AGENT = "wsc"
EXCLUDED = ("12.", "13.")
CLASSES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
BAD = ("FAILED", "UNIMPLEMENTED")


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def load_results(index_path):
    with open(index_path) as f:
        index = json.load(f)
    if AGENT not in index:
        sys.exit("no results for agent '%s' in %s" % (AGENT, index_path))
    return {
        case: {"behavior": r["behavior"], "behaviorClose": r["behaviorClose"]}
        for case, r in index[AGENT].items()
        if not case.startswith(EXCLUDED)
    }


def accepted(expected_value, actual):
    if isinstance(expected_value, list):
        return actual in expected_value
    return actual == expected_value


def compare(results, expected):
    problems = []
    for case in sorted(set(results) | set(expected["cases"]), key=case_key):
        got, want = results.get(case), expected["cases"].get(case)
        if got is None:
            problems.append("%-8s missing from this run" % case)
            continue
        bad = [k for k in ("behavior", "behaviorClose") if got[k] in BAD]
        if bad:
            problems.append("%-8s %s" % (case, ", ".join("%s %s" % (k, got[k]) for k in bad)))
        if want is None:
            problems.append("%-8s not in the expected file" % case)
            continue
        for k in ("behavior", "behaviorClose"):
            if not accepted(want[k], got[k]):
                problems.append("%-8s %s is %s, expected %s" % (case, k, got[k], want[k]))
    return problems


def summarise(results):
    counts = collections.Counter(r["behavior"] for r in results.values())
    close_counts = collections.Counter(r["behaviorClose"] for r in results.values())
    line = ", ".join("%s %d" % (c, counts.get(c, 0)) for c in CLASSES)
    close_line = ", ".join("%s %d" % (c, close_counts.get(c, 0)) for c in CLASSES)
    print("  %d cases (12.* and 13.* excluded: permessage-deflate)" % len(results))
    print("  behavior:      " + line)
    print("  behaviorClose: " + close_line)


def update(path, results, old):
    cases = {}
    for case in sorted(results, key=case_key):
        keep = old.get("cases", {}).get(case, {})
        cases[case] = {
            k: keep[k] if isinstance(keep.get(k), list) and results[case][k] in keep[k]
            else results[case][k]
            for k in ("behavior", "behaviorClose")
        }
    # One case per line, so a change shows as a one-line diff.
    notes = ["  " + json.dumps(n, ensure_ascii=False) for n in old.get("notes", [])]
    lines = ['  "%s": %s' % (c, json.dumps(v, sort_keys=True)) for c, v in cases.items()]
    with open(path, "w") as f:
        f.write('{\n "notes": [\n%s\n ],\n "cases": {\n' % ",\n".join(notes))
        f.write(",\n".join(lines))
        f.write("\n }\n}\n")
    print("  wrote %s: review the diff before committing it" % path)


def main():
    args = [a for a in sys.argv[1:] if a != "--update"]
    if len(args) != 2:
        sys.exit(__doc__)
    index_path, expected_path = args
    results = load_results(index_path)
    summarise(results)
    try:
        with open(expected_path) as f:
            expected = json.load(f)
    except IOError:
        expected = {"cases": {}}
    if "--update" in sys.argv:
        update(expected_path, results, expected)
        expected = json.load(open(expected_path))
    problems = compare(results, expected)
    for p in problems:
        print("  FAIL " + p)
    if problems:
        print("  %d problem(s) against %s" % (len(problems), expected_path))
        return 1
    print("  every case as expected (%s)" % expected_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
