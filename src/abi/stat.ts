// struct stat as fstat(2) fills it through glibc, for the two fields bun-uring reads: the device
// and inode numbers that name an open file for as long as it exists (asm-generic/stat.h for
// aarch64 and the other generic architectures, arch/x86/include/uapi/asm/stat.h for x86_64; both
// put st_dev at 0 and st_ino at 8, as unsigned 64-bit words).

/** Bytes of struct stat: 144 on x86_64, 128 on the generic layout (aarch64). */
export const STAT_SIZE = 144;

/** Offsets of the fields bun-uring reads (u64 each). */
export const STAT = {
  st_dev: 0,
  st_ino: 8,
} as const;
