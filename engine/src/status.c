/* status.c - the thread-local error message. */
#include <stdarg.h>
#include <stdio.h>

#include "realnet/status.h"

static _Thread_local char last_error[1024] = "no error";

const char *rn_last_error(void) { return last_error; }

rn_status rn_error(rn_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return s;
}

const char *rn_status_name(rn_status s) {
  switch (s) {
    case RN_OK: return "ok";
    case RN_ERR_ARG: return "argument error";
    case RN_ERR_SHAPE: return "shape error";
    case RN_ERR_OOM: return "out of memory";
    case RN_ERR_IO: return "i/o error";
    case RN_ERR_FORMAT: return "format error";
    case RN_ERR_DEVICE: return "device error";
    case RN_ERR_UNSUPPORTED: return "unsupported";
  }
  return "unknown status";
}
