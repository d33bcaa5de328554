"""Differential check of our math verifier against Math-Verify (PyPI `math-verify`).

Builds model-style (pred, gold) pairs from the four benchmark test sets (GSM8K, MATH500,
Minerva Math, OlympiadBench): each reference answer written the ways models write a final
answer, against its own reference (expected equal) and against the reference of another
problem whose answer is written differently (expected not equal). Both verifiers judge every
pair; the report gives right/wrong, false positives and false negatives for each, per style,
and lists our false negatives by class.

Styles (the first four for every problem, the others where they apply):
  boxed         So the answer is $\\boxed{A}$.
  final_answer  Final Answer: The final answer is $A$. I hope it is correct.   (Minerva)
  hash          #### A   (GSM8K: the text after #### in the solution, e.g. 2,125)
  plain         A
  dollar        The final answer is $\\$A$. ...  (GSM8K questions that mention $; 1,000 style)
  solution      the reference solution itself (GSM8K, MATH500, Minerva; it ends in the answer)
  unicode       A in plain-text Unicode (√51, 3√13, π, 35/9) where it converts fully
  mixed         a fraction above 1 as a mixed number (-3\\frac{8}{9}) in a box
  swapped       an equation L = R boxed as R = L
  repeat        The answer is $\\boxed{A}$ followed by a second \\boxed{A}

Math-Verify reads each pred with `parse(pred)` and each gold with `parse("$" + gold + "$")`
and judges with `verify(gold, pred)`; its verdicts are cached (they do not change when our
verifier does). Ours runs as `deno task verify` in the repository, one JSON line per pair.
Pairs, caches and the full lists are written under --work (default /tmp/verifier_diff).

Usage (from the repository root):
    python3 -m venv /tmp/mvenv && /tmp/mvenv/bin/pip install 'math-verify[antlr4_13_2]'
    /tmp/mvenv/bin/python tools/verifier_diff.py [--data /work/shared/data] [--limit N]
"""

import argparse
import collections
import hashlib
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SETS = ["gsm8k_test", "math500_test", "minerva_math_test", "olympiadbench_test"]
CORE_STYLES = ["boxed", "final_answer", "hash", "plain"]


# --- styles ---


def with_commas(answer):
    """`1000` as `1,000` (integers only); anything else unchanged."""
    if re.fullmatch(r"-?\d{4,}", answer):
        sign = "-" if answer.startswith("-") else ""
        return sign + f"{int(answer.lstrip('-')):,}"
    return answer


UNICODE_RULES = [
    (re.compile(r"\\sqrt\{(\d+)\}"), r"√\1"),
    (re.compile(r"\\sqrt(\d)"), r"√\1"),
    # Not after a digit: 1\frac{4}{5} is a mixed number, not 14/5.
    (re.compile(r"(?<![\d\s])\s*\\d?frac\{(\d+)\}\{(\d+)\}"), r"\1/\2"),
    (re.compile(r"\\pi\b"), "π"),
    (re.compile(r"\\cdot\b"), "·"),
    (re.compile(r"\\times\b"), "×"),
    (re.compile(r"\\(?:le|leq)\b"), "≤"),
    (re.compile(r"\\(?:ge|geq)\b"), "≥"),
    (re.compile(r"\\infty\b"), "∞"),
    (re.compile(r"\\pm\b"), "±"),
    (re.compile(r"\\(?:left|right)\b"), ""),
]


def unicode_form(answer):
    """The answer as plain-text Unicode, or None when it has nothing to convert or keeps LaTeX."""
    text = answer
    for pattern, replacement in UNICODE_RULES:
        text = pattern.sub(replacement, text)
    if text == answer or "\\" in text or "{" in text:
        return None
    # A fraction written a/b next to other terms needs its own parentheses: skip those.
    if re.search(r"\d/\d", text) and re.search(r"[√π^]", text):
        return None
    return text.replace(" ", "") if "√" in text else text


def mixed_form(answer):
    """`-\\frac{35}{9}` as `-3\\frac{8}{9}`; None unless the answer is a fraction above 1."""
    match = re.fullmatch(r"\s*(-?)\s*\\[dt]?frac\{(\d+)\}\{(\d+)\}\s*", answer)
    if match is None:
        return None
    sign, p, q = match.group(1), int(match.group(2)), int(match.group(3))
    if q <= 1 or p <= q or p % q == 0:
        return None
    return f"{sign}{p // q}\\frac{{{p % q}}}{{{q}}}"


def swapped_form(answer):
    """`L = R` as `R = L` for an answer with exactly one `=` (and no list or relation)."""
    if answer.count("=") != 1 or re.search(r"[<>,;]|\\(?:le|ge|neq|ne|approx)", answer):
        return None
    left, right = (side.strip() for side in answer.split("="))
    if left == "" or right == "":
        return None
    return f"{right} = {left}"


def gsm8k_hash_text(row):
    match = re.search(r"####\s*(.+)\s*$", row["solution"])
    return match.group(1).strip() if match else row["answer"]


def styles_for(name, row):
    """The (style, pred) pairs written for one problem."""
    answer = row["answer"]
    out = [
        ("boxed", f"So the answer is $\\boxed{{{answer}}}$."),
        ("final_answer", f"Final Answer: The final answer is ${answer}$. I hope it is correct."),
        ("hash", "#### " + (gsm8k_hash_text(row) if name == "gsm8k_test" else answer)),
        ("plain", answer),
    ]
    if name == "gsm8k_test" and "$" in row["problem"]:
        out.append((
            "dollar",
            f"Final Answer: The final answer is $\\${with_commas(answer)}$. I hope it is correct.",
        ))
    if name != "olympiadbench_test":
        out.append(("solution", row["solution"]))
    unicode = unicode_form(answer)
    if unicode is not None:
        out.append(("unicode", unicode))
    mixed = mixed_form(answer)
    if mixed is not None:
        out.append(("mixed", f"So the answer is $\\boxed{{{mixed}}}$."))
    swapped = swapped_form(answer)
    if swapped is not None:
        out.append(("swapped", f"So the answer is $\\boxed{{{swapped}}}$."))
    out.append(("repeat", f"The answer is $\\boxed{{{answer}}}$\n\n\\boxed{{{answer}}}"))
    return out


def normalized(answer):
    return re.sub(r"\s+", "", answer)


def build_pairs(data, limit):
    pairs = []
    for name in SETS:
        with open(data / f"{name}.jsonl") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if limit is not None:
            rows = rows[:limit]
        for k, row in enumerate(rows):
            # The next problem whose answer is written differently.
            j = (k + 1) % len(rows)
            while normalized(rows[j]["answer"]) == normalized(row["answer"]) and j != k:
                j = (j + 1) % len(rows)
            other = rows[j]["answer"]
            for style, pred in styles_for(name, row):
                base = {"set": name, "id": row["id"], "style": style, "pred": pred}
                pairs.append({**base, "gold": row["answer"], "expected": True})
                if j != k:
                    pairs.append({**base, "gold": other, "expected": False})
    return pairs


# --- the two verifiers ---


def pair_key(pair):
    return hashlib.sha256(json.dumps([pair["pred"], pair["gold"]]).encode()).hexdigest()


def run_math_verify(pairs, cache_path):
    from math_verify import parse, verify

    cache = {}
    if cache_path.exists():
        with open(cache_path) as f:
            for line in f:
                entry = json.loads(line)
                cache[entry["key"]] = entry["equal"]
    parsed = {}

    def parsed_of(text):
        if text not in parsed:
            try:
                parsed[text] = parse(text)
            except Exception:  # Math-Verify raises on some inputs despite raise_on_error=False
                parsed[text] = []
        return parsed[text]

    verdicts = []
    with open(cache_path, "a") as out:
        for n, pair in enumerate(pairs):
            key = pair_key(pair)
            if key not in cache:
                try:
                    equal = bool(verify(parsed_of("$" + pair["gold"] + "$"), parsed_of(pair["pred"])))
                except Exception:
                    equal = False
                cache[key] = equal
                out.write(json.dumps({"key": key, "equal": equal}) + "\n")
            verdicts.append(cache[key])
            if (n + 1) % 2000 == 0:
                print(f"  Math-Verify: {n + 1}/{len(pairs)}", file=sys.stderr)
    return verdicts


def run_ours(pairs, repo, work):
    lines = "".join(json.dumps({"pred": p["pred"], "gold": p["gold"]}) + "\n" for p in pairs)
    result = subprocess.run(
        ["deno", "task", "verify", "--timeout-ms", "5000"],
        cwd=repo,
        input=lines,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"deno task verify failed ({result.returncode}): {result.stderr[-2000:]}")
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(answers) != len(pairs):
        sys.exit(f"deno task verify answered {len(answers)} lines for {len(pairs)} pairs")
    with open(work / "ours.jsonl", "w") as f:
        for answer in answers:
            f.write(json.dumps(answer) + "\n")
    return answers


# --- report ---


def fn_class(pair, answer):
    """The class of one of our false negatives, from what the pair looks like."""
    pred, gold = pair["pred"], pair["gold"]
    if answer.get("reason") == "undecided":
        return "undecided (numeric check could not decide)"
    if "\\$" in pred:
        return "escaped dollar \\$ in a math span"
    if "√" in pred:
        return "unicode √ before a number"
    if re.search(r"-\s*\d+\s*\\[dt]?frac", pred + " " + gold):
        return "negative mixed number"
    if pair["style"] == "swapped":
        return "equation with swapped sides"
    if pair["style"] == "repeat":
        return "repeated identical box"
    return f"other ({pair['style']}): {answer.get('reason', answer.get('error', '?'))}"


def counts(expected, verdicts):
    c = collections.Counter()
    for want, got in zip(expected, verdicts):
        c["right" if want == got else "wrong"] += 1
        if got and not want:
            c["fp"] += 1
        if want and not got:
            c["fn"] += 1
    return c


def row(label, c):
    return f"  {label:<26}{c['right']:>7}{c['wrong']:>7}{c['fp']:>11}{c['fn']:>11}"


def report(pairs, mv, ours, work, examples):
    expected = [p["expected"] for p in pairs]
    ours_equal = [bool(a.get("equal")) for a in ours]
    positives = sum(expected)
    print(f"pairs: {len(pairs)} ({positives} expected equal, {len(pairs) - positives} expected not)")
    header = f"  {'':<26}{'right':>7}{'wrong':>7}{'false pos':>11}{'false neg':>11}"
    print(header)
    print(row("Math-Verify", counts(expected, mv)))
    print(row("ours", counts(expected, ours_equal)))
    doubtful = sum(1 for k, want in enumerate(expected) if not want and mv[k] and ours_equal[k])
    print(f"  (false positives of both: {doubtful}, labels in doubt such as 5 vs x=5)")
    print("\nper style (Math-Verify | ours):")
    styles = list(dict.fromkeys(p["style"] for p in pairs))
    for style in styles:
        index = [k for k, p in enumerate(pairs) if p["style"] == style]
        cm = counts([expected[k] for k in index], [mv[k] for k in index])
        co = counts([expected[k] for k in index], [ours_equal[k] for k in index])
        print(
            f"  {style:<13}{len(index):>6} pairs  MV right {cm['right']:>5} fp {cm['fp']:>3} "
            f"fn {cm['fn']:>4} | ours right {co['right']:>5} fp {co['fp']:>3} fn {co['fn']:>4}"
        )
    print("\nper set (Math-Verify | ours):")
    for name in SETS:
        index = [k for k, p in enumerate(pairs) if p["set"] == name]
        cm = counts([expected[k] for k in index], [mv[k] for k in index])
        co = counts([expected[k] for k in index], [ours_equal[k] for k in index])
        print(
            f"  {name:<19}{len(index):>6} pairs  MV fp {cm['fp']:>3} fn {cm['fn']:>4} | "
            f"ours fp {co['fp']:>3} fn {co['fn']:>4}"
        )

    classes = collections.defaultdict(list)
    for k, p in enumerate(pairs):
        if p["expected"] and not ours_equal[k]:
            classes[fn_class(p, ours[k])].append(k)
    print(f"\nour false negatives by class ({sum(len(v) for v in classes.values())}):")
    with open(work / "ours_false_negatives.jsonl", "w") as f:
        for name, index in sorted(classes.items(), key=lambda item: -len(item[1])):
            mv_right = sum(mv[k] for k in index)
            print(f"  {len(index):>5}  {name}  (Math-Verify right on {mv_right})")
            for k in index[:examples]:
                a = ours[k]
                print(
                    f"           {pairs[k]['id']} pred {json.dumps(pairs[k]['pred'][-70:])} "
                    f"read {json.dumps(a.get('pred_answer'))} gold {json.dumps(pairs[k]['gold'])}"
                )
            for k in index:
                f.write(json.dumps({**pairs[k], "class": name, "ours": ours[k]}) + "\n")

    fps = [k for k, p in enumerate(pairs) if not p["expected"] and ours_equal[k]]
    print(f"\nour false positives ({len(fps)}; 'MV equal' marks a label that both doubt):")
    for k in fps:
        print(
            f"  {pairs[k]['id']} [{pairs[k]['style']}] read {json.dumps(ours[k].get('pred_answer'))}"
            f" vs gold {json.dumps(pairs[k]['gold'])}{'  (MV equal)' if mv[k] else ''}"
        )
    undecided = sum(1 for a in ours if a.get("reason") == "undecided")
    reasons = collections.Counter(a.get("reason", "error") for a in ours)
    print(f"\nour reasons: {dict(reasons)}")
    errors = sum(1 for a in ours if "error" in a)
    timeouts = sum(1 for a in ours if a.get("reason") == "timeout")
    print(f"\nours: {undecided} undecided, {timeouts} timeouts, {errors} input errors")
    print(f"full lists under {work}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/work/shared/data"))
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/verifier_diff"))
    parser.add_argument("--repo", type=pathlib.Path, default=ROOT)
    parser.add_argument("--limit", type=int, default=None, help="problems per set (default all)")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per class")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = build_pairs(args.data, args.limit)
    with open(args.work / "pairs.jsonl", "w") as f:
        for pair in pairs:
            f.write(json.dumps(pair) + "\n")
    print(f"Math-Verify on {len(pairs)} pairs (cached in {args.work})", file=sys.stderr)
    mv = run_math_verify(pairs, args.work / "math_verify_cache.jsonl")
    print("ours (deno task verify)", file=sys.stderr)
    ours = run_ours(pairs, args.repo, args.work)
    report(pairs, mv, ours, args.work, args.examples)


if __name__ == "__main__":
    main()
