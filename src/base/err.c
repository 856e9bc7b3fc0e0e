#include "s1c/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int s1c_fail(s1c_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int s1c_fail_prefix(s1c_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* the message is cut to the buffer when too long: a one-line error, not a log */
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", prefix);
    if (n > 0 && (size_t)n < sizeof err->msg) memcpy(err->msg + n, old, sizeof err->msg - (size_t)n - 1);
    err->msg[sizeof err->msg - 1] = 0;
    return -1;
}
