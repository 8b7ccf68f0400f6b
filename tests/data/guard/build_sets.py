"""Build kefu's labelled guard sets (PII, prompt injection, moderation; zh and en) from the templates.

Run: ``.venv/bin/python tests/data/guard/build_sets.py`` (writes the six JSONL files beside this script and
the counts block of README.md); ``--check`` only rebuilds in memory and says whether the files are current.
Deterministic: a fixed seed, the standard library only.
"""

import argparse
import sys
from pathlib import Path

from setgen.build import build_dataset, jsonl
from setgen.summary import describe, shortfalls

HERE = Path(__file__).parent
COUNTS_START = "<!-- counts:start (written by build_sets.py) -->"
COUNTS_END = "<!-- counts:end -->"


def built_files() -> dict[str, str]:
    """File name -> content for every file the generator owns, README.md included."""
    pii, pii_templates = build_dataset("pii")
    injection, injection_templates = build_dataset("injection")
    moderation, moderation_templates = build_dataset("moderation")
    templates = {"pii": pii_templates, "injection": injection_templates, "moderation": moderation_templates}
    missing = shortfalls(pii, injection, moderation, templates)
    if missing:
        raise SystemExit("the sets miss the brief's minimums:\n" + "\n".join(missing))
    files = {
        f"{name}_{part}.jsonl": jsonl(records[part])
        for name, records in (("pii", pii), ("injection", injection), ("moderation", moderation))
        for part in ("dev", "test")
    }
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    head, _, rest = readme.partition(COUNTS_START)
    _, _, tail = rest.partition(COUNTS_END)
    counts = describe(pii, injection, moderation, templates)
    files["README.md"] = f"{head}{COUNTS_START}\n{counts}\n{COUNTS_END}{tail}"
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    arguments = parser.parse_args()
    files = built_files()
    stale = [
        name
        for name, content in files.items()
        if not (HERE / name).exists() or (HERE / name).read_text(encoding="utf-8") != content
    ]
    readme = files["README.md"]
    print(readme[readme.index(COUNTS_START) + len(COUNTS_START) : readme.index(COUNTS_END)].strip())
    if arguments.check:
        print("out of date: " + ", ".join(stale) if stale else "all files are current")
        return 1 if stale else 0
    for name in stale:
        (HERE / name).write_text(files[name], encoding="utf-8")
    print(f"wrote {len(stale)} of {len(files)} files" if stale else "all files were already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
