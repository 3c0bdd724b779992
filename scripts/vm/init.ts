// The guest's /init (run by the kernel as PID 1 under busybox sh) and the env file it sources.
//
// The host finds its way through the serial console by the marker lines below; everything
// between BOOT and END is the test run's own output.

export const GUEST_PROJECT = "/project";
export const GUEST_LIBURING = "/usr/lib/x86_64-linux-gnu/liburing.so.2";
export const GUEST_ENV_FILE = "/etc/bun-uring/env";
export const GUEST_MODULE_LIST = "/etc/bun-uring/modules";

export const MARK_BOOT = "@@bun-uring-vm boot";
export const MARK_END = "@@bun-uring-vm end";

export const INIT_SCRIPT = `#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# /dev/console in the archive served until devtmpfs hid it; reopen the console from devtmpfs.
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t devpts devpts /dev/pts
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# Only emergencies reach the console from here on, so kernel chatter does not interleave with
# test output; warnings are still collected from dmesg at the end.
echo 1 > /proc/sys/kernel/printk
hostname bun-uring-vm
ip link set lo up
# io_uring rings, registered buffers and ZCRX areas count against RLIMIT_MEMLOCK.
ulimit -l unlimited
release=$(uname -r)
for module in $(cat ${GUEST_MODULE_LIST}); do
  insmod /lib/modules/$release/$module || echo "vm: insmod $module failed"
done
. ${GUEST_ENV_FILE}
echo "${MARK_BOOT} kernel=$release@@"
cd ${GUEST_PROJECT}
bun test "$@"
rc=$?
dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace|io_uring' | head -n 40 | sed 's/^/vm: dmesg: /'
echo "${MARK_END} exit=$rc@@"
sync
poweroff -f
`;

/** Single-quoted for sh: the only character needing care inside single quotes is ' itself. */
export function shQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** The env file: exported variables, then the test files as positional parameters. */
export function envScript(env: Record<string, string>, files: string[]): string {
  const lines = Object.entries(env).map(([key, value]) => `export ${key}=${shQuote(value)}`);
  lines.push(`set -- ${files.map(shQuote).join(" ")}`);
  return lines.join("\n") + "\n";
}
