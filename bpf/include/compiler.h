/* Branch hints. clang lays out the blocks of an unlikely branch after the
 * function's straight line, and the JIT keeps the BPF order, so the forward
 * path runs through a few consecutive cache lines instead of jumping across
 * the whole program between the checks that every packet passes. */
#ifndef XDPR_COMPILER_H
#define XDPR_COMPILER_H

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
