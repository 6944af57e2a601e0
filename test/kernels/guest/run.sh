#!/bin/bash
# The guest's PID 1 after init: the host's userland on a read-only 9p root
# with a tmpfs overlay. It mounts what the tests expect (proc, sys, bpffs,
# debugfs, fresh /run and /tmp so nothing of the host's runtime state shows
# through), binds the guest kernel's own modules at /lib/modules/$(uname -r),
# loads the modules the tests use, runs each line of the plan (pre-built test
# binaries, so the guest needs no Go toolchain), writes everything into the
# shared writable directory, and powers off. The host reads the results
# from there; a missing "done" file means the run did not finish.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
arg() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" /proc/cmdline; }
poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}
mount -t proc proc /proc
mount -t sysfs sys /sys
out=$(arg xdpr_out)
kmod=$(arg xdpr_kmod)
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 xdprout "$out"; then
	echo "xdpr-run: FAILED: mount the results directory (9p tag xdprout) at $out"
	poweroff_now
fi
exec >>"$out/guest.log" 2>&1
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mkdir -p "/lib/modules/$(uname -r)"
mount --bind "$kmod" "/lib/modules/$(uname -r)"
ip link set lo up
echo "kernel $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
uname -r >"$out/uname"
while read -r m; do
	modprobe "$m" || echo "modprobe $m: failed"
done <"$out/modules"
echo "modules loaded after $(cut -d' ' -f1 /proc/uptime) s"
# shellcheck disable=SC1091
. "$out/env"
while IFS=$'\t' read -r name dir bin pattern timeout; do
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd "$dir" && exec "$bin" -test.v=test2json -test.count=1 -test.timeout="$timeout" -test.run "$pattern") >"$out/$name.out" 2>&1
	echo $? >"$out/$name.rc"
	echo "$name: exit $(cat "$out/$name.rc") after $(cut -d' ' -f1 /proc/uptime) s (started at $start)"
done <"$out/plan"
echo done >"$out/done"
poweroff_now
