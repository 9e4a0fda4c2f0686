#!/usr/bin/python3
"""check-metrics.py - the metrics a webhook serves against docs/metrics.md, the docs and the alerts.

  check-metrics.py --scrape FILE --reference docs/metrics.md [--rules FILE]... [--docs FILE]...

FILE of --scrape is a /metrics answer (Prometheus text format). The reference's table under
"## Metrics the webhook serves" has one row per metric: | `name` | type | labels | meaning |;
the table under "## Series the alerts use from elsewhere" lists, one row each, the series a rule
may name although the webhook does not serve them (kube-state-metrics, Prometheus's own `up`).
--rules FILE is a Prometheus rule file (groups: ...); --docs FILE is any Markdown page whose
`topowire_...` names must be served.

Checks, one line per problem, each naming the metric:
  - every metric served is in the reference, with the type served;
  - every label served (but `le`), and every value of it (but `version`'s), is named in its row;
  - every metric in the reference is served;
  - every metric a rule's expression names is served or listed as coming from elsewhere;
  - every `topowire_` metric a docs page names is served.
Exit status: 0 when all hold, 1 when a problem was found, 2 on a usage or read error.
"""
import argparse
import re
import sys

import yaml

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SERVED_HEADING = "## Metrics the webhook serves"
ELSEWHERE_HEADING = "## Series the alerts use from elsewhere"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Words of PromQL that look like metric names but are not.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan", "atan2", "start", "end"}


def parse_scrape(text):
    """Returns {family: {"type": T, "labels": {name: set(values)}}} of a /metrics answer."""
    families = {}
    sample_re = re.compile(r"^(" + NAME + r")(?:\{(.*)\})?\s+\S+")
    label_re = re.compile(r'(' + NAME + r')="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        m = re.match(r"^# TYPE (" + NAME + r") (\w+)$", line)
        if m:
            families.setdefault(m.group(1), {"type": m.group(2), "labels": {}})
            continue
        if not line or line.startswith("#"):
            continue
        m = sample_re.match(line)
        if not m:
            continue
        fam = family_of(m.group(1), families)
        if fam is None:
            fam = m.group(1)
            families.setdefault(fam, {"type": "untyped", "labels": {}})
        for k, v in label_re.findall(m.group(2) or ""):
            families[fam]["labels"].setdefault(k, set()).add(v)
    return families


def family_of(name, families):
    """The family a sample or series name belongs to (histogram parts to their family), or None."""
    if name in families:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return None


def table_rows(markdown, heading):
    """The rows of the table under heading (up to the next heading) as {name: [cells]}."""
    rows = {}
    inside = False
    for line in markdown.splitlines():
        if line.startswith("#"):
            if inside:
                break
            inside = line.strip() == heading
            continue
        if not inside or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(" + NAME + r")`", cells[0])
        if m:
            rows[m.group(1)] = cells
    return rows


def expr_metrics(expr):
    """The metric names a PromQL expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])(" + NAME + r")(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrape", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--docs", action="append", default=[])
    a = ap.parse_args()
    try:
        served = parse_scrape(open(a.scrape, encoding="utf-8").read())
        reference = open(a.reference, encoding="utf-8").read()
        rule_files = [(f, yaml.safe_load(open(f, encoding="utf-8"))) for f in a.rules]
        pages = [(f, open(f, encoding="utf-8").read()) for f in a.docs]
    except (OSError, yaml.YAMLError) as e:
        print(f"check-metrics: {e}", file=sys.stderr)
        return 2
    if not served:
        print(f"check-metrics: {a.scrape} holds no metrics", file=sys.stderr)
        return 2
    documented = table_rows(reference, SERVED_HEADING)
    elsewhere = table_rows(reference, ELSEWHERE_HEADING)
    problems = []

    for name in sorted(served):
        fam = served[name]
        row = documented.get(name)
        if row is None:
            labels = ", ".join(sorted(fam["labels"])) or "no labels"
            problems.append(f"{name}: served ({fam['type']}, {labels}) but not documented in "
                            f"{a.reference}: add a row to its table \"{SERVED_HEADING[3:]}\"")
            continue
        if len(row) < 4 or row[1] != fam["type"]:
            problems.append(f"{name}: served as a {fam['type']}, documented in {a.reference} "
                            f"as {row[1] if len(row) > 1 else 'nothing'}")
            continue
        for label, values in sorted(fam["labels"].items()):
            if label == "le":
                continue
            if f"`{label}`" not in row[2]:
                problems.append(f"{name}: served with the label {label}, which {a.reference} "
                                f"does not name in its row")
                continue
            if label == "version":
                continue
            more = sections_about(reference, name)
            for v in sorted(values):
                if f"`{v}`" not in row[2] and f"`{v}`" not in more:
                    problems.append(f"{name}: served with {label}=\"{v}\", which {a.reference} "
                                    f"does not name")
    for name in sorted(documented):
        if name not in served:
            problems.append(f"{name}: documented in {a.reference} but not served")
    for name in sorted(elsewhere):
        if name in served or name.startswith("topowire_"):
            problems.append(f"{name}: listed in {a.reference} as a series from elsewhere, but it "
                            f"is topowire's own")

    for path, doc in rule_files:
        for group in (doc or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                what = rule.get("alert") or rule.get("record") or "(unnamed)"
                for name in sorted(expr_metrics(str(rule.get("expr", "")))):
                    if family_of(name, served) is None and name not in elsewhere:
                        problems.append(f"{name}: named by the rule {what} in {path}, but the "
                                        f"webhook does not serve it and {a.reference} does not "
                                        f"list it as a series from elsewhere")

    for path, text in pages:
        seen = set()
        for m in re.finditer(r"\b(topowire_[a-z0-9_]*[a-z0-9])\b(?![_*(])", text):
            name = m.group(1)
            if name in seen:
                continue
            seen.add(name)
            if family_of(name, served) is None:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{name}: named in {path}:{line}, but the webhook does not serve it")

    for p in problems:
        print(p)
    return 1 if problems else 0


def sections_about(reference, name):
    """The text of the reference's "###" sections whose heading names `name` (value tables)."""
    out = []
    for m in re.finditer(r"^### ([^\n]*)\n(.*?)(?=^#|\Z)", reference, re.S | re.M):
        if f"`{name}`" in m.group(1):
            out.append(m.group(2))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
