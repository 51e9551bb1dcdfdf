#!/usr/bin/env bash
# make lint: build the collection (galaxy.yml), install the tarball into a
# scratch folder, and use it from there only: ansible-doc lists its roles'
# argument specs, syntax.yml (every role by its full name) and check.yml pass
# --syntax-check, and check.yml runs (gunicorn's preflight, which includes the
# internal app_server role by its short name).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-$PWD/.venv/bin}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$bin/ansible-galaxy" collection build --force --output-path "$scratch/dist" . >/dev/null
tarball=$(ls "$scratch"/dist/cdkit-channels_deploy-*.tar.gz)
echo "collection: built $(basename "$tarball") ($(tar -tzf "$tarball" | grep -c '^roles/[^/]*/$') roles, $(du -k "$tarball" | cut -f1) KiB)"
# Only the scratch collection and the ansible package's bundled ones; no
# roles path, no ansible.cfg of this repository.
printf '[defaults]\n' >"$scratch/ansible.cfg"
export ANSIBLE_CONFIG="$scratch/ansible.cfg" ANSIBLE_ROLES_PATH="$scratch/no-roles" ANSIBLE_LOCAL_TEMP="$scratch/tmp" \
  ANSIBLE_COLLECTIONS_PATH="$scratch/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=true
# --no-deps: the dependencies come with the pinned ansible package.
"$bin/ansible-galaxy" collection install --no-deps -p "$scratch/collections" "$tarball" >/dev/null
roles=$("$bin/ansible-doc" -t role -l cdkit.channels_deploy | grep -c '^cdkit\.channels_deploy\.')
expected=$(find roles -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$roles" -eq "$expected" ] || { echo "collection: ansible-doc lists $roles roles, roles/ has $expected" >&2; exit 1; }
"$bin/ansible-playbook" -i localhost, --syntax-check testbed/collection/syntax.yml testbed/collection/check.yml >/dev/null
"$bin/ansible-playbook" -i localhost, testbed/collection/check.yml >"$scratch/run.log" 2>&1 ||
  { cat "$scratch/run.log" >&2; exit 1; }
echo "collection: installs; from the installed copy $roles roles documented, syntax.yml and check.yml pass"
