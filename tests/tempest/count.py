"""Counts a Tempest run from its subunit stream, and checks it against the
list of known failures.

Tempest's own exit status is not trusted: a class whose setUpClass fails or
skips reports one result named "setUpClass (module.Class)" and none for its
tests. Here every listed test gets a status: its own result, else its class's
(so a class-level error counts as that many failed tests, and a class-level
skip as that many skipped), else "failed" (listed but never reported: the
worker died). A failed tearDownClass (a class's cleanup) is one more failure.

Usage: count.py GROUP LISTED SUBUNIT KNOWN RESULTS
  LISTED   the test ids `stestr list` printed (one per line, with [attrs])
  SUBUNIT  the run's subunit v2 stream
  KNOWN    the known-failures file (test id, blanks, cause; # comments;
           an id marked ~ may pass or fail: a flaky test, with its cause)
  RESULTS  where to write "status test-id [reason]" lines, sorted
Prints "GROUP: N passed, N failed, N skipped of T (P % of those not skipped)"
and the differences from the known failures; exits 1 when a test that is
not known to fail failed, or a known failure passed.
"""

import re
import sys

import subunit
import testtools

ATTRS = re.compile(r"\[.*\]$")
CLASS_LEVEL = re.compile(r"^(setUpClass|tearDownClass) \((.+)\)$")


def plain(test_id):
    return ATTRS.sub("", test_id.strip())


def reason(test):
    """The failure's last words: the exception and its details, on one line."""
    text = ""
    for name, content in test["details"].items():
        if "traceback" in name or name == "reason":
            text = content.as_text()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(("tempest.lib.exceptions.", "testtools.matchers.", "AssertionError",
                            "jsonschema.exceptions.", "tempest.exceptions.")):
            return " ".join(lines[i:i + 2])[:300]
    return " ".join(lines[-2:])[:300]


def read_stream(path):
    own, by_class, why = {}, {}, {}

    def on_test(test):
        status, test_id = test["status"], plain(test["id"])
        if status in ("exists", "inprogress") or not test_id:
            return
        if status in ("success", "xfail"):
            status = "passed"
        elif status == "skip":
            status = "skipped"
        else:
            status = "failed"
        m = CLASS_LEVEL.match(test_id)
        if m:
            # "setUpClass (a.b.Cls)" is known here as "a.b.Cls.setUpClass"
            test_id = f"{plain(m.group(2))}.{m.group(1)}"
        if status != "passed":
            why[test_id] = reason(test)
        if m and m.group(1) == "setUpClass":
            by_class[plain(m.group(2))] = status
        elif m and status != "failed":
            pass
        else:
            # (a failed tearDownClass, a class's cleanup, is a result of its own)
            # a test run twice (a retry) counts once, failed if it ever failed
            if own.get(test_id) != "failed":
                own[test_id] = status

    with open(path, "rb") as f:
        stream = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            stream.run(result)
        finally:
            result.stopTestRun()
    return own, by_class, why


def read_known(path):
    known = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, cause = line.partition(" ")
            known[test_id] = cause.strip()
    return known


def flaky(known):
    """Known failures marked "~": they pass or fail from run to run."""
    return {t[1:] for t in known if t.startswith("~")}


def main():
    group, listed_path, subunit_path, known_path, results_path = sys.argv[1:6]
    with open(listed_path) as f:
        listed = [plain(line) for line in f if line.strip().startswith("tempest.")]
    own, by_class, why = read_stream(subunit_path)
    status = {}
    for test_id in listed:
        cls = test_id.rsplit(".", 1)[0]
        status[test_id] = own.get(test_id) or by_class.get(cls, "failed")
        if test_id not in why:
            why[test_id] = why.get(f"{cls}.setUpClass", "never reported: the worker died")
    for test_id, s in own.items():
        if test_id.endswith(".tearDownClass"):
            status[test_id] = s
    with open(results_path, "w") as out:
        for test_id in sorted(status):
            line = f"{status[test_id]} {test_id}"
            if status[test_id] != "passed":
                line += "  " + why[test_id]
            out.write(line + "\n")

    counts = {s: sum(1 for v in status.values() if v == s) for s in ("passed", "failed", "skipped")}
    ran = counts["passed"] + counts["failed"]
    share = f"{100.0 * counts['passed'] / ran:.1f} %" if ran else "n/a"
    print(f"{group}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped of {len(status)} ({share} of those not skipped)")

    known = read_known(known_path)
    either = flaky(known)
    new = sorted(t for t, s in status.items() if s == "failed" and t not in known and t not in either)
    fixed = sorted(t for t, s in status.items() if s == "passed" and t in known)
    for t in new:
        print(f"  NEW FAILURE {t}")
    for t in fixed:
        print(f"  NOW PASSES  {t} (take it off the known failures)")
    return 1 if new or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
