"""Fail when two thin roles over one internal role share copied blocks.

`gunicorn` and `daphne` supply only what differs from the internal
`app_server` role. This check keeps them that way: with each role's own name
replaced by one token, no block of MIN_LINES or more consecutive identical
lines (leading and trailing whitespace ignored, blank lines included) may
appear in both roles, in any pair of their files. The `duplicates` tool reads
Python and shell only, so YAML, Jinja and Markdown are compared here.

Usage: python testbed/role_copies.py [ROLE_A ROLE_B]  (default: gunicorn daphne)
Exit status: 0 when no block is shared, 1 when one is (each is printed).
"""

import difflib
import re
import sys
from pathlib import Path

ROLES = Path(__file__).resolve().parent.parent / "roles"
MIN_LINES = 6


def role_lines(role: str) -> dict[str, list[str]]:
    """Return each file of `role` as stripped lines with the role's name replaced.

    Args:
        role: a folder name under roles/.

    Raises:
        FileNotFoundError: the role does not exist.
    """
    root = ROLES / role
    if not root.is_dir():
        raise FileNotFoundError(root)
    token = re.compile(re.escape(role))
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            text = path.read_text().splitlines()
            files[str(path.relative_to(root))] = [token.sub("ROLE", line).strip() for line in text]
    return files


def shared_blocks(first: str, second: str) -> list[str]:
    """Describe every block of at least MIN_LINES identical lines the two roles share."""
    found = []
    lines_a, lines_b = role_lines(first), role_lines(second)
    for name_a, a in lines_a.items():
        for name_b, b in lines_b.items():
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            for block in matcher.get_matching_blocks():
                if block.size >= MIN_LINES:
                    found.append(
                        f"{first}/{name_a}:{block.a + 1} and {second}/{name_b}:{block.b + 1}: "
                        f"{block.size} identical lines, from {a[block.a]!r}"
                    )
    return found


def main() -> int:
    first, second = sys.argv[1:3] if len(sys.argv) == 3 else ("gunicorn", "daphne")
    found = shared_blocks(first, second)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} block(s) copied between {first} and {second}: move them to app_server")
        return 1
    print(f"{first} and {second} share no block of {MIN_LINES} or more lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
