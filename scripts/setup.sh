#!/usr/bin/env bash
# Idempotent host set-up for rust_loop: installs what is missing and unpacks the
# kernel source and a rust-src that matches rustc. Safe to run again: every step
# checks first and says what it does.
set -euo pipefail
. "$(dirname "$0")/env.sh"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# --- apt suites: trixie-backports (linux-source, rust-src), bookworm-backports (QEMU 10)
SRC=/etc/apt/sources.list.d/rust_loop-backports.sources
PIN=/etc/apt/preferences.d/rust_loop-backports
if [ ! -f "$SRC" ]; then
	mirror=$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 | tr -d ' ' || true)
	mirror=${mirror:-http://deb.debian.org/debian}
	log "adding trixie-backports and bookworm-backports from $mirror (pinned low)"
	$SUDO tee "$SRC" >/dev/null <<EOT
Types: deb
URIs: $mirror
Suites: trixie-backports bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	$SUDO tee "$PIN" >/dev/null <<EOT
Package: *
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
EOT
	rm -f "$RL_CACHE/.apt-updated"
fi
mkdir -p "$RL_CACHE"
cand=$(apt-cache policy "linux-source-$KVER" 2>/dev/null || true)
if [ ! -f "$RL_CACHE/.apt-updated" ] || ! grep -q 'Candidate: [0-9]' <<<"$cand"; then
	log "apt-get update"
	$SUDO apt-get update -qq
	touch "$RL_CACHE/.apt-updated"
fi

# --- packages
PKGS="clang-19 lld-19 llvm-19 libclang-19-dev bc flex bison libelf-dev libssl-dev cpio
busybox-static fio e2fsprogs util-linux fdisk kmod dmsetup xz-utils make gcc libc6-dev
python3 file gcc-multilib"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "installing:$missing"
	$SUDO apt-get install -y -qq $missing >/dev/null
fi
# DKMS (make dkms-install and its test in make check), without the recommended
# linux-headers for the host's kernel: the module is built against our own trees.
if ! dpkg-query -W -f='${Status}' dkms 2>/dev/null | grep -q 'install ok installed'; then
	log "installing dkms"
	$SUDO apt-get install -y -qq --no-install-recommends dkms >/dev/null
fi
qemu_ok() { command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 --version | grep -qE 'version (9|[1-9][0-9])\.'; }
if ! qemu_ok; then
	log "installing qemu-system-x86 from bookworm-backports"
	$SUDO apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
fi

# --- bindgen (the kernel wants >= 0.71.1)
if ! bindgen --version 2>/dev/null | grep -qE 'bindgen 0\.(7[1-9]|[89][0-9])'; then
	log "cargo install bindgen-cli 0.72 (about a minute)"
	cargo install bindgen-cli --version '^0.72' --locked -q
fi

# --- benchmark peers and chart: the ublk loop target (rublk) and matplotlib.
# Optional: a failure is reported by the benchmark, not fatal here.
if ! command -v rublk >/dev/null; then
	log "cargo install rublk (the ublk loop target for the benchmark; a few minutes)"
	cargo install rublk --version '^0.2' --locked -q || log "warning: rublk did not build; make bench will report ublk as unavailable"
fi
if ! python3 -c 'import matplotlib' 2>/dev/null; then
	log "pip install matplotlib (benchmark chart)"
	pip install -q matplotlib || log "warning: no matplotlib; make bench will skip the chart"
fi

# --- rust-src of exactly rustc's version, unpacked (the system is not touched)
rv=$(rustc_version)
if [ ! -d "$(RL_RUST_LIB_SRC)" ]; then
	debver=$(apt-cache madison rust-src | awk -v v="$rv" '$3 ~ "^"v"\\+" {print $3; exit}')
	[ -n "$debver" ] || die "Debian has no rust-src for rustc $rv (apt-cache madison rust-src)"
	log "unpacking rust-src $debver"
	tmp=$(mktemp -d); chmod 755 "$tmp"
	(cd "$tmp" && apt-get download -qq "rust-src=$debver")
	rm -rf "$(RL_RUST_SRC_DIR)"
	dpkg-deb -x "$tmp"/rust-src_*.deb "$(RL_RUST_SRC_DIR)"
	rm -rf "$tmp"
fi

# --- Linux source
if [ -z "$(RL_KSRC)" ] || [ ! -f "$(RL_KSRC)/Makefile" ]; then
	log "downloading and unpacking linux-source-$KVER"
	mkdir -p "$RL_CACHE/src"
	tmp=$(mktemp -d); chmod 755 "$tmp"
	(cd "$tmp" && apt-get download -qq "linux-source-$KVER")
	deb=$(ls "$tmp"/linux-source-"$KVER"_*.deb)
	dpkg-deb -f "$deb" Version >"$RL_CACHE/src/linux-source-$KVER.version"
	dpkg-deb -x "$deb" "$tmp/x"
	rm -rf "$RL_CACHE/src/linux-source-$KVER"
	tar -C "$RL_CACHE/src" -xaf "$tmp"/x/usr/src/linux-source-"$KVER".tar.*
	rm -rf "$tmp"
fi
log "ready: $(RL_KSRC) ($(cat "$RL_CACHE/src/linux-source-$KVER.version")), rust-src $rv, $(bindgen --version | head -1)"
