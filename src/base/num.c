/* Numbers as text. */
#include "s1c/base.h"

#include <stdio.h>

/* Integral values within +-1e15 (every such double is an exact integer, and converting it to long
 * long is defined) print as integers, so an id or an answer written as 42 in JSON reads "42";
 * anything else prints with enough digits to read back the same double. */
const char *s1c_num_text(double d, char *buf, size_t cap) {
    if (d > -1e15 && d < 1e15 && d == (double)(long long)d) snprintf(buf, cap, "%lld", (long long)d);
    else snprintf(buf, cap, "%.17g", d);
    return buf;
}
