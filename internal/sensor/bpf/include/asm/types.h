/* The BPF target has no asm/ headers of its own; its integer types are the
 * generic ones (what every 64-bit architecture's asm/types.h includes). */
#include <asm-generic/int-ll64.h>
