/* cuda_api.h - what the rest of the program may ask of the CUDA backend. Compiled into every build: without
 * REALNET_CUDA (or without a GPU) the queries answer "none" (0 devices, not available) and the rest are no-ops,
 * so callers (the Lua binding, tests, benchmarks) need no #ifdef.
 */
#ifndef REALNET_CUDA_API_H
#define REALNET_CUDA_API_H

#include <stdbool.h>
#include <stddef.h>

#include "realnet/backend.h"

/* Whether this build has the CUDA backend compiled in. */
bool rn_cuda_built(void);
/* CUDA devices usable now (0 without the backend, a driver or a GPU). */
int rn_cuda_device_count(void);
static inline bool rn_cuda_available(void) { return rn_cuda_device_count() > 0; }
/* Why no device is usable ("this build has no CUDA backend", the driver's error, ...); "" when one is. */
const char *rn_cuda_unavailable_reason(void);
/* The device's marketing name into buf ("NVIDIA H200"); an error without such a device. */
rn_status rn_cuda_device_name(int device, char *buf, size_t n);

/* TF32 tensor-core math for float32 convolutions and matrix products: faster on Ampere and Hopper, with about
 * 1e-3 relative error instead of float32's 1e-7. Off unless REALNET_TF32=1 is set or this turns it on. */
void rn_cuda_set_tf32(bool on);
bool rn_cuda_get_tf32(void);

/* bfloat16 autocast for convolutions and matrix products, the rest of the computation staying float32: their
 * inputs are rounded to bfloat16 (8-bit mantissas, round to nearest even) and the products summed in float32,
 * on the tensor cores at twice TF32's rate. Matrix products (and 1x1 convolutions, which run as products) keep
 * float32 outputs; cuDNN's convolutions write bfloat16 outputs (no float32-output bfloat16 configuration
 * exists), converted back to float32, as PyTorch's autocast gives. About 4e-3 relative error per product.
 * Takes precedence over TF32. Off unless REALNET_BF16=1 is set or this turns it on. */
void rn_cuda_set_bf16(bool on);
bool rn_cuda_get_bf16(void);
/* Convolutions that ran in float32 under the autocast because cuDNN had no bfloat16 algorithm for their shape
 * (or refused the bfloat16 configuration), counted since the process started. */
uint64_t rn_cuda_bf16_fallbacks(void);

/* Lanes: the independent parts of a computation (RealNet's per-level U-Nets) queued on separate streams of one
 * device, so that their small kernels run side by side instead of one after another (a batch-1 forward leaves
 * most of a large GPU idle). fork(device, n) starts n lanes (2 .. 8) after the work queued so far; lane(device, i)
 * sends the following work to lane i (0 .. n-1; a fork starts on lane 0); join(device) makes later work wait
 * for every lane. The work of one lane must not read tensors another lane writes during the fork; everything
 * made before the fork may be read by all. Works inside a CUDA graph capture (the lanes become parallel
 * branches of the graph). One fork at a time per device; graph_end joins a fork left open. */
rn_status rn_cuda_fork(int device, int lanes);
rn_status rn_cuda_lane(int device, int lane);
rn_status rn_cuda_join(int device);
bool rn_cuda_forked(int device);
/* How many lanes parallel sections may use (realnet.device.parallel; 1 = none, run them one after another).
 * 1 unless REALNET_CUDA_LANES=N is set or this sets it; clamped to 1 .. 8. */
void rn_cuda_set_lanes(int lanes);
int rn_cuda_get_lanes(void);

/* Waits for all work queued on the device (every lane); refused during a graph capture. */
rn_status rn_cuda_synchronize(int device);
/* Returns the caching allocator's free blocks to the driver (all devices). */
void rn_cuda_empty_cache(void);
/* Bytes the caching allocator holds in free blocks (all devices). */
size_t rn_cuda_cached_bytes(void);

/* CUDA graphs: the work that one call queues on a device, recorded once and replayed with one launch, so a
 * forward pass of hundreds of small kernels costs one launch of host time. Between begin and end nothing
 * runs: every op is recorded (their outputs are allocated and stay the graph's). A replay re-runs the
 * recorded work on the same addresses: copy new inputs into the tensors the capture read (copy_) and read
 * the outputs it produced. Work that waits for the device (a copy to the host, an index check) cannot be
 * recorded and fails the capture with an error naming the call. One capture at a time. */
typedef struct rn_cuda_graph rn_cuda_graph;
rn_status rn_cuda_graph_begin(int device);
rn_status rn_cuda_graph_end(int device, rn_cuda_graph **out); /* also ends a failed capture (then an error) */
rn_status rn_cuda_graph_replay(rn_cuda_graph *g); /* refused during a capture and while the device is forked */
void rn_cuda_graph_free(rn_cuda_graph *g);        /* waits for its replays (none can run during a capture) */
bool rn_cuda_capturing(void);              /* whether a capture is in progress (ops that must wait refuse) */

/* The backend for cuda:<index> (registration in backend.c); NULL with an error when absent. */
const rn_backend *rn_cuda_backend(int index);

#endif
