#!/usr/bin/env python3
"""A BFCL v4 sample run of Steward's planner, scored with BFCL's own AST checker.

Converts a range of cases of BFCL v4's `simple_python`, `multiple` and `irrelevance` files
(from the installed `bfcl-eval` package) into Steward eval cases, each carrying its own
tools in the OpenAI function format, runs them with `steward eval`, and scores every
proposed call with `bfcl_eval`'s `ast_checker` against BFCL's possible answers (not with
Steward's own matcher). An irrelevance case passes when Steward calls no function, i.e.
chose `respond`.

Usage (from anywhere; the binary is built first with `cargo build`):

    pip install bfcl-eval==2026.3.23 soundfile   # soundfile: an import bfcl_eval needs
    python3 scripts/bfcl_sample.py               # cases 100-159 of each file

Options: --start N --count N (the range, by position in each file), --categories
simple,multiple,irrelevance, --workdir DIR (default /tmp/bfcl: cases.jsonl, report.json,
scores.json), --steward PATH, --model NAME, --score-only (score an existing report.json).

Nothing from BFCL is committed: its data is read from the installed package at run time and
the converted cases are written outside the repository.
"""
import argparse
import copy
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = {  # category -> data file stems tried in order (v4 renamed `simple`)
    "simple": ["BFCL_v4_simple_python", "BFCL_v4_simple"],
    "multiple": ["BFCL_v4_multiple"],
    "irrelevance": ["BFCL_v4_irrelevance"],
}
# BFCL's loose type names -> JSON Schema (Steward's normalize_schema accepts these too;
# mapping them here keeps the cases plain JSON Schema). `any` drops the type.
TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array",
         "int": "integer", "bool": "boolean", "str": "string", "any": None}
# A prompt-format model of BFCL's table: function names keep their dots when checked.
CHECKER_MODEL = "gorilla-openfunctions-v2"


def data_dir() -> Path:
    import bfcl_eval
    return Path(bfcl_eval.__file__).resolve().parent / "data"


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_category(cat: str, start: int, count: int):
    """(questions, possible answers by id or None) of one category's range."""
    data = data_dir()
    for stem in FILES[cat]:
        qfile = data / f"{stem}.json"
        if qfile.is_file():
            break
    else:
        sys.exit(f"no BFCL data file for {cat} under {data} (tried {FILES[cat]})")
    rows = read_jsonl(qfile)[start:start + count]
    afile = data / "possible_answer" / qfile.name
    answers = None
    if cat != "irrelevance":
        if not afile.is_file():
            sys.exit(f"no possible answer file {afile}")
        answers = {a["id"]: a["ground_truth"] for a in read_jsonl(afile)}
    return qfile, rows, answers


def json_schema(schema):
    """A BFCL parameter schema with its loose type names mapped, recursively."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            mapped = TYPES.get(value, value)
            if mapped is not None:
                out[key] = mapped
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [json_schema(s) for s in value]
        else:
            out[key] = value
    return out


def literal(value, top=True):
    """One acceptable BFCL value as a Steward literal: `""` (may be omitted) is null; in a
    nested dict of alternatives each key takes its first non-empty one (none: left out)."""
    if top and value == "":
        return None
    if isinstance(value, dict):
        return {k: literal(next(a for a in alts if a != ""), False) if isinstance(alts, list)
                else alts for k, alts in value.items()
                if not isinstance(alts, list) or any(a != "" for a in alts)}
    if isinstance(value, list):
        return [literal(v, False) for v in value]
    return value


def convert(cat: str, row: dict, answer) -> dict:
    turns = row["question"][0]
    if len(row["question"]) != 1 or [t["role"] for t in turns] != ["user"]:
        raise ValueError("not a single user turn")
    tools = [{"type": "function", "function": {
        "name": f["name"], "description": f.get("description", ""),
        "parameters": json_schema(f["parameters"])}} for f in row["function"]]
    case = {"id": row["id"], "category": f"bfcl-{cat}", "text": turns[0]["content"],
            "tools": tools}
    if answer is None:
        case["expect"] = [{"tool": "respond"}]
        return case
    if len(answer) != 1:
        raise ValueError(f"{len(answer)} expected calls (only one call is proposed)")
    [(name, params)] = answer[0].items()
    case["expect"] = [{"tool": name, "args": {
        key: [literal(v) for v in alts] for key, alts in params.items()}}]
    return case


def write_cases(path: Path, cases: list):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))


def steward_eval(args, cases_file: Path, extra: list) -> subprocess.CompletedProcess:
    cmd = [str(args.steward), "eval", "--cases", str(cases_file), "--no-baseline"] + extra
    if args.model:
        cmd += ["--model", args.model]
    print("$ " + " ".join(cmd), file=sys.stderr)
    capture = "--limit" in extra  # the validation pass; the real run streams its progress
    return subprocess.run(cmd, cwd=REPO, text=True, capture_output=capture)


def loosen(cases: list, errors: str, dropped: dict, notes: list) -> bool:
    """Applies Steward's load errors to the cases: an acceptable value its schema rejects is
    dropped (`$any` when none is left), an unknown key is dropped with `extra_args_ok`, a
    case whose error is anything else is left out. True when anything changed."""
    by_id = {c["id"]: c for c in cases}
    changed, drops = False, {}
    for line in errors.splitlines():
        m = re.search(r"\(case (\S+)\):? (.*)", line)
        if not m or m[1] not in by_id:
            continue
        case, msg = by_id[m[1]], m[2]
        args = case["expect"][0].get("args", {})
        if a := re.search(r"args\.(\w+)\[(\d+)\]", msg):
            drops.setdefault((case["id"], a[1]), set()).add(int(a[2]))
        elif a := re.search(r'"(\w+)" is not a parameter', msg):
            args.pop(a[1], None)
            case["extra_args_ok"] = True
            notes.append(f"{case['id']}: {a[1]} is no parameter, left out")
        elif a := re.search(r'required argument "(\w+)" of \S+ has no expectation', msg):
            args[a[1]] = [{"$any": True}]
            notes.append(f"{case['id']}: {a[1]}: required, no answer given")
        else:
            dropped[case["id"]] = msg
            cases.remove(case)
            by_id.pop(case["id"])
        changed = True
    for (cid, key), idx in drops.items():
        if key in by_id.get(cid, {}).get("expect", [{}])[0].get("args", {}):
            alts = by_id[cid]["expect"][0]["args"][key]
            kept = [v for j, v in enumerate(alts) if j not in idx]
            by_id[cid]["expect"][0]["args"][key] = kept or [{"$any": True}]
            notes.append(f"{cid}: {key}: Steward's schema check rejects "
                         f"{[alts[j] for j in sorted(idx)]} (Steward's own expectation only)")
    return changed


def score(cats, rows_by_cat, answers_by_cat, report: dict, unconverted: dict) -> dict:
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    got = {r["id"]: r for r in report["rows"]}
    out = {}
    for cat in cats:
        results = []
        for row in rows_by_cat[cat]:
            cid, r = row["id"], got.get(row["id"])
            call = (r or {}).get("got")
            if cid in unconverted or r is None:
                ok, why = False, f"not run: {unconverted.get(cid, 'no report row')}"
            elif call is None:
                ok, why = False, f"no proposal: {r.get('error')}"
            elif cat == "irrelevance":
                ok = call["name"] == "respond"
                why = None if ok else f"called {call['name']}({json.dumps(call['arguments'])})"
            else:
                output = [] if call["name"] == "respond" else [{call["name"]: call["arguments"]}]
                category = "simple_python" if cat == "simple" else cat
                try:
                    res = ast_checker(row["function"], output, answers_by_cat[cat][cid],
                                      Language.PYTHON, category, CHECKER_MODEL)
                    ok, why = res["valid"], "; ".join(res.get("error", []))
                except Exception as e:  # the checker's own failure counts as a miss
                    ok, why = False, f"checker raised {type(e).__name__}: {e}"
                if not ok:
                    why = f"{call['name']}({json.dumps(call['arguments'])}): {why}"
            results.append({"id": cid, "pass": bool(ok), "why": why,
                            "latency_ms": (r or {}).get("latency_ms")})
        out[cat] = results
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--categories", default="simple,multiple,irrelevance")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bfcl"))
    p.add_argument("--steward", type=Path, default=REPO / "target/debug/steward")
    p.add_argument("--model", help="planner model manifest name (default: Steward's)")
    p.add_argument("--score-only", action="store_true", help="score workdir/report.json")
    args = p.parse_args()
    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    if bad := [c for c in cats if c not in FILES]:
        p.error(f"unknown categories {bad}; choose from {list(FILES)}")
    if args.workdir.resolve().is_relative_to(REPO):
        p.error("--workdir must be outside the repository")
    args.workdir.mkdir(parents=True, exist_ok=True)
    cases_file, report_file = args.workdir / "cases.jsonl", args.workdir / "report.json"

    import importlib.metadata
    print(f"bfcl-eval {importlib.metadata.version('bfcl-eval')}, data {data_dir()}")
    cases, unconverted, notes, rows_by_cat, answers_by_cat = [], {}, [], {}, {}
    for cat in cats:
        qfile, rows, answers = load_category(cat, args.start, args.count)
        rows_by_cat[cat], answers_by_cat[cat] = rows, answers
        print(f"{cat}: {qfile.name} [{args.start}, {args.start + len(rows)}): "
              f"{rows[0]['id']} .. {rows[-1]['id']}" if rows else f"{cat}: no rows")
        for row in rows:
            try:
                answer = None if answers is None else answers[row["id"]]
                cases.append(convert(cat, row, answer))
            except (ValueError, KeyError) as e:
                unconverted[row["id"]] = f"conversion: {e}"

    started = time.monotonic()
    if not args.score_only:
        if not args.steward.is_file():
            sys.exit(f"{args.steward} not found: build it with `cargo build` first")
        for _ in range(5):  # load and validate only (--limit 0), loosening what Steward rejects
            write_cases(cases_file, cases)
            check = steward_eval(args, cases_file, ["--limit", "0"])
            text = check.stdout + check.stderr
            if "no cases to run" in text:
                break
            if not loosen(cases, text, unconverted, notes):
                sys.exit(f"steward eval could not load {cases_file}:\n{text}")
        else:
            sys.exit("cases still rejected after 5 passes")
        run = steward_eval(args, cases_file, ["--report", str(report_file)])
        if run.returncode != 0:
            sys.exit(f"steward eval exited {run.returncode}")
    elapsed = time.monotonic() - started
    report = json.loads(report_file.read_text())
    scores = score(cats, rows_by_cat, answers_by_cat, report, unconverted)
    (args.workdir / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")

    print(f"\nbackend {report.get('backend')}; cases {args.start}-{args.start + args.count - 1}; "
          f"scored with bfcl_eval ast_checker; details in {args.workdir / 'scores.json'}")
    for cat in cats:
        for r in scores[cat]:
            if not r["pass"]:
                print(f"  FAIL {r['id']}: {r['why'][:300]}")
    for note in notes:
        print(f"  loosened {note}")
    if unconverted:
        print("not converted or left out: " + ", ".join(f"{k} ({v})" for k, v in unconverted.items()))
    for cat in cats:
        n, total = sum(r["pass"] for r in scores[cat]), len(scores[cat])
        print(f"{cat} {n}/{total} ({100 * n / max(total, 1):.1f}%)")
    if not args.score_only:
        print(f"run time {elapsed:.0f} s ({len(cases)} cases, model load and validation included)")


if __name__ == "__main__":
    main()
