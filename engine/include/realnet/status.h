/* status.h - error values of the realnet core.
 *
 * Every fallible core function returns an rn_status. On failure it also leaves a message in a
 * thread-local buffer (rn_last_error) that names the argument, shape or file at fault. The core never
 * exits, aborts or calls Lua; the binding turns a status into a Lua error.
 */
#ifndef REALNET_STATUS_H
#define REALNET_STATUS_H

typedef enum {
  RN_OK = 0,
  RN_ERR_ARG,          /* a bad argument value (negative size, unknown name, NaN where not allowed) */
  RN_ERR_SHAPE,        /* shapes or dtypes do not fit together */
  RN_ERR_OOM,          /* an allocation failed */
  RN_ERR_IO,           /* a file could not be read or written */
  RN_ERR_FORMAT,       /* a file's content is malformed */
  RN_ERR_DEVICE,       /* a device call failed, or tensors live on different devices */
  RN_ERR_UNSUPPORTED   /* valid request this build cannot do */
} rn_status;

/* Thread-local text of the last error set on this thread; never NULL. */
const char *rn_last_error(void);

/* Sets the thread-local message (printf-style) and returns `s`, so callers can `return rn_error(...)`. */
rn_status rn_error(rn_status s, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;

/* Short name of a status ("shape error", ...). */
const char *rn_status_name(rn_status s);

/* Propagate a failing status. */
#define RN_TRY(expr) do { rn_status rn_try_s_ = (expr); if (rn_try_s_ != RN_OK) return rn_try_s_; } while (0)

#endif
