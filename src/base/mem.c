/* Memory for large buffers read as streams (packed weights, the KV cache). */
#include "s1c/base.h"

#include <stdlib.h>
#include <sys/mman.h>

/* 2 MiB aligned and advised as huge pages when it spans at least one: with 4 KiB pages every
 * page is a TLB miss and a restart of the hardware prefetchers (they stop at 4 KiB boundaries),
 * which makes a stream of short runs (the KV cache's rows of one head, a matrix per token) wait
 * on memory latency instead of bandwidth. A failed advice is harmless (the kernel may not have
 * transparent huge pages). */
void *s1c_alloc_huge(size_t bytes) {
    enum { HUGE = 1 << 21 };
    void *data = NULL;
    size_t align = bytes >= HUGE ? HUGE : 64;
    if (posix_memalign(&data, align, bytes ? bytes : 1) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE) (void)madvise(data, bytes & ~(size_t)(HUGE - 1), MADV_HUGEPAGE);
#endif
    return data;
}
