/* long is 64 bits on the BPF target. */
#define __BITS_PER_LONG 64
#include <asm-generic/bitsperlong.h>
