"""Fail when two roles define a handler under the same name (run by ``make lint``).

Ansible shares handler names across every role of a play, and a notification
goes to the handler loaded last under its name. Two roles with a handler of the
same name in one play therefore notify each other's handler, in the other
role's order: gunicorn's "Reload systemd" once ran after "Restart gunicorn",
which then started the old unit. The roles are meant to be combined in any
play, so each handler name (and each ``listen`` topic) must belong to one role.
"""

import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def handler_names(roles_dir: Path) -> dict[str, set[str]]:
    """Map each handler name and ``listen`` topic to the roles that define it.

    Args:
        roles_dir: the folder of the roles, e.g. ``roles/``; every
            ``<role>/handlers/*.yml`` in it is read.

    Raises:
        yaml.YAMLError: a handlers file is not valid YAML.
    """
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(roles_dir.glob("*/handlers/*.yml")):
        role = path.parent.parent.name
        for handler in yaml.safe_load(path.read_text()) or []:
            listen = handler.get("listen", [])
            topics = [listen] if isinstance(listen, str) else list(listen)
            for name in [handler.get("name"), *topics]:
                if name:
                    found[name].add(role)
    return found


def main() -> int:
    """Print each shared name with its roles; the exit status is 1 when there is one."""
    names = handler_names(ROOT / "roles")
    shared = {name: roles for name, roles in names.items() if len(roles) > 1}
    for name, roles in sorted(shared.items()):
        print(f"handler name {name!r} is defined by several roles: {', '.join(sorted(roles))}")
    if shared:
        print("Name the role in the handler (e.g. 'Reload systemd for gunicorn').")
    return 1 if shared else 0


if __name__ == "__main__":
    sys.exit(main())
