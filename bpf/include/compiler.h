/* Branch hints. clang lays out the blocks of an unlikely branch after the
 * function's straight line, and the JIT keeps the BPF order, so the forward
 * path runs through a few consecutive cache lines instead of jumping across
 * the whole program between the checks that every packet passes. */
#ifndef XDPR_COMPILER_H
#define XDPR_COMPILER_H

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* in_memory keeps the local x in its stack slot: clang would otherwise
 * split a small struct (an IPv6 address copy) into registers, and where
 * too many values are live, spill each 32-bit word to an 8-octet slot,
 * twice the stack the struct takes (the stack a call chain may use is
 * scarce on 6.1: loader/stack_test.go). */
#define in_memory(x) asm volatile("" : : "r"(&(x)) : "memory")

#endif
