#!/usr/bin/env bash
# Usage: sudo scripts/install-deps.sh
#
# Installs the Debian packages switchyard's local default and its tests use: nginx (the private
# nginx in front of the sockets), openssh-server/client (the test lab's real sshd hosts), curl,
# ss (iproute2), shellcheck (lints remote-scripts/), siege (an independent load client),
# chromium (opens the HTML report in a test), GNU time (peak memory in npm run bench), rsync (the
# large-build bench's minimum: rsync --link-dest), tini (npm run bench runs under `tini -s`, an init
# that reaps at once, as a server's does: bench/reaper.ts) and faketime (libfaketime: test/faults runs a
# deploy with the clock a year back) and cron (`gulp supervise --boot`: the deploy user's crontab
# @reboot line; no root needed to use it), and the Mono FastCGI stack of examples/mono-shop
# (test/e2e/mono.test.ts): mono-fastcgi-server4, mono-mcs (ASP.NET compiles the pages at run time;
# mono-fastcgi-server4 pulls it in through mono-xsp4-base -> mono-devel anyway, named here because
# the pages need it) and libfcgi-bin (cgi-fcgi: the FastCGI health check). Measured on Debian 12
# with --no-install-recommends: 166 packages, 198 MB installed, ~34 s. Node.js >= 20.19 must
# already be there.
#
# Exit codes: 0 installed; 1 apt failed; 3 not root.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (sudo)" >&2; exit 3; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  nginx-light openssh-server openssh-client curl iproute2 procps shellcheck siege chromium git ca-certificates time faketime rsync tini cron \
  mono-fastcgi-server4 mono-mcs libfcgi-bin >/dev/null
# sshd, when started as root by the test lab, wants its privilege-separation directory.
mkdir -p /run/sshd
