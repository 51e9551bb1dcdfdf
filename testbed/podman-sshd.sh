#!/bin/sh
# SSH into a test-bed container without a network path or a listening server:
# ssh's ProxyCommand for the Molecule scenarios (.config/molecule/config.yml).
#
# Usage (by ssh): ProxyCommand testbed/podman-sshd.sh %h PUBLIC_KEY_FILE
#
# It puts the scenario's public key where the container's sshd reads it, then
# runs sshd in inetd mode on this connection's stdin and stdout. Ansible then
# talks SSH with pipelining and one multiplexed connection per host, one
# process per task, where its podman connection starts several `podman`
# processes per task (mount, mkdir, copy, chmod, run, remove): about three
# times faster per task on a loaded machine.
set -eu
container=${1:?usage: $0 CONTAINER PUBLIC_KEY_FILE}
key=${2:?usage: $0 CONTAINER PUBLIC_KEY_FILE}
podman exec -i "$container" sh -c \
  'mkdir -p /run/sshd /run/testbed-ssh && cat >/run/testbed-ssh/authorized_keys && chmod 600 /run/testbed-ssh/authorized_keys' <"$key"
exec podman exec -i "$container" /usr/sbin/sshd -i -e \
  -o AuthorizedKeysFile=/run/testbed-ssh/authorized_keys \
  -o UsePAM=no -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o LogLevel=ERROR
