"""Compares Autobahn reports with the expected results, case by case.

usage: compare.py EXPECTED SERVER_INDEX CLIENT_INDEX [--update-expected] [--subset]
Prints cases per result for each role; exits 1 on any difference. With
--subset, only the cases that ran are compared (AUTOBAHN_CASES in run.sh).
"""
import collections
import json
import sys


def load(path):
    with open(path) as f:
        (agent_cases,) = json.load(f).values()
    return {case: [r["behavior"], r["behaviorClose"]] for case, r in agent_cases.items()}


def key(case):
    return [int(part) for part in case.split(".")]


def main():
    expected_path, server_path, client_path = sys.argv[1:4]
    actual = {"server": load(server_path), "client": load(client_path)}
    if "--update-expected" in sys.argv and "--subset" in sys.argv:
        print("autobahn: --update-expected needs every case (unset AUTOBAHN_CASES)")
        sys.exit(2)
    if "--update-expected" in sys.argv:
        with open(expected_path, "w") as f:
            json.dump({role: dict(sorted(r.items(), key=lambda kv: key(kv[0]))) for role, r in actual.items()},
                      f, indent=1)
            f.write("\n")
    with open(expected_path) as f:
        expected = json.load(f)
    if "--subset" in sys.argv:
        expected = {role: {case: r for case, r in results.items() if case in actual[role]}
                    for role, results in expected.items()}
        if not all(actual.values()):
            print("autobahn: a role ran no case")
            sys.exit(1)
    failed = False
    for role in ("server", "client"):
        counts = collections.Counter()
        for behavior, close in actual[role].values():
            counts["behavior " + behavior] += 1
            counts["close " + close] += 1
        print("%s role: %d cases; %s" % (role, len(actual[role]),
                                         ", ".join("%s: %d" % kv for kv in sorted(counts.items()))))
        for case in sorted(set(expected[role]) | set(actual[role]), key=key):
            want, got = expected[role].get(case), actual[role].get(case)
            if want != got:
                failed = True
                print("  DIFFERENT %s %s: expected %s, got %s" % (role, case, want, got))
    allowed = {"OK", "INFORMATIONAL", "UNIMPLEMENTED"}
    for role, results in expected.items():
        for case, outcome in results.items():
            if set(outcome) - allowed:
                failed = True
                print("  expected.json accepts %s for %s %s" % (outcome, role, case))
    print("autobahn: %s" % ("DIFFERENCES" if failed else "every case as expected"))
    sys.exit(1 if failed else 0)


main()
