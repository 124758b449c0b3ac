"""Per-module report of a `mutmut run` over the pure rule modules (`make mutation`).

Reads the results mutmut 3 keeps next to the mutated copies (`mutants/medr1/**/*.py.meta`) and prints,
per module, how many mutants the rule tests killed, how many survived, and how many ended otherwise
(timeout, suspicious, segfault, no tests, ...), then the surviving mutants by name (`mutmut show NAME`
prints the diff). Only the rule functions are reported: the whole of answers.py, splits.py and
functions.py, and the named functions of grpo.py and evaluate.py (their other functions have no
fast tests, so their mutants end as "no tests" and say nothing).

Exits 1 when there are no results, or when no reported mutant was killed (the tests did not run
against the mutated copy).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# module -> the function names reported (None: every function of the module)
SCOPE: dict[str, set[str] | None] = {
    "medr1/rewards/answers.py": None,
    "medr1/data/splits.py": None,
    "medr1/rewards/functions.py": None,
    "medr1/train/grpo.py": {"group_advantages"},
    "medr1/evaluation/evaluate.py": {"score_prediction", "summarize", "bootstrap_ci", "longest_first"},
}

# mutmut.stats.status_by_exit_code (3.x); anything else is "suspicious"
STATUS = {
    0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious",
    36: "timeout", 37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
    -11: "segfault", -9: "segfault", None: "not checked",
}
CLASS_SEP = "ǁ"  # mutmut's separator in a method's mangled name: xǁClassǁmethod


def function_name(key: str) -> str:
    """`medr1.x.y.x_func__mutmut_3` -> `func`; `medr1.x.y.xǁClsǁmeth__mutmut_3` -> `Cls.meth`."""
    mangled = key.partition("__mutmut_")[0].rpartition(".")[2]
    if CLASS_SEP in mangled:
        _, cls, meth = mangled.split(CLASS_SEP)
        return f"{cls}.{meth}"
    return mangled[2:]


def main(root: Path = Path("mutants")) -> int:
    rows, survivors, total_killed = [], [], 0
    for module, functions in SCOPE.items():
        meta = root / f"{module}.meta"
        if not meta.is_file():
            print(f"no mutmut results at {meta}; run `make mutation`", file=sys.stderr)
            return 1
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for key, code in sorted(exit_codes.items(), key=lambda kv: (kv[0].partition("__mutmut_")[0],
                                                                     int(kv[0].rpartition("_")[2]))):
            name = function_name(key)
            if functions is not None and name.partition(".")[0] not in functions:
                continue
            status = STATUS.get(code, "suspicious")
            counts[status] += 1
            if status == "survived":
                survivors.append(key)
        other = sum(n for s, n in counts.items() if s not in ("killed", "survived"))
        detail = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()) if s not in ("killed", "survived"))
        scope = "all functions" if functions is None else ", ".join(sorted(functions))
        rows.append((module, counts["killed"], counts["survived"], other, detail, scope))
        total_killed += counts["killed"]

    width = max(len(r[0]) for r in rows)
    print(f"\n{'module':<{width}}  {'killed':>6}  {'survived':>8}  {'other':>5}  other: what / scope")
    for module, killed, survived, other, detail, scope in rows:
        print(f"{module:<{width}}  {killed:>6}  {survived:>8}  {other:>5}  {detail or '-'} / {scope}")
    print(f"{'total':<{width}}  {sum(r[1] for r in rows):>6}  {sum(r[2] for r in rows):>8}  "
          f"{sum(r[3] for r in rows):>5}")
    print(f"\nsurviving mutants ({len(survivors)}; `{Path(sys.executable).parent}/mutmut show NAME` for the diff):")
    for key in survivors:
        print(f"  {key}")
    if not total_killed:
        print("no mutant was killed: the tests did not run against ./mutants", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
