#!/usr/bin/env bash
# Installs what isol8 needs on a Debian/Ubuntu host (run as root): containerd,
# runc, mmdebstrap (to build the runtime images offline), busybox (the oci
# package runs specs under runc on a busybox rootfs), a C compiler and the
# static libc and libseccomp archives (isol8 validates seccomp profiles with
# libseccomp and is linked statically), util-linux's unshare (sandbox
# user namespaces), apt-utils (package install tests), docker-registry
# (the registry-source tests push to and pull from one they start on
# loopback) and Debian's docker.io (the Docker driver's integration tests
# start a private dockerd of their own and never use a system one; on a
# systemd host apt also starts the docker service). The auth store's tests
# start their own PostgreSQL and MariaDB servers from Debian's packages
# (initdb/postgres, mariadb-install-db/mariadbd); the packages' own
# services are not used.
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v busybox >/dev/null || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc)
compgen -G '/usr/lib/*/libc.a' >/dev/null || need+=(libc6-dev)
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# apt-ftparchive builds the Debian repository the bash install tests serve.
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
command -v docker-registry >/dev/null || need+=(docker-registry)
# unshare creates each sandbox's user namespace as the sandbox's host id;
# nsenter (same package) is used by the network attachment tests.
if ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null; then
  need+=(util-linux)
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null || need+=(mariadb-server)
command -v dockerd >/dev/null || need+=(docker.io)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${need[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
