/* realnet.h - the realnet engine: tensors, ops with autograd, optimisers and RNG in C11.
 *
 *   #include <realnet/realnet.h>
 *   rn_rng g; rn_rng_init(&g, 1, 0);
 *   int64_t shape[] = {8, 3, 32, 32};
 *   rn_tensor *x = NULL, *w = NULL, *y = NULL;
 *   rn_tensor_empty(&x, 4, shape, RN_F32, rn_cpu());
 *   rn_rng_normal_(&g, x, 0, 1);
 *   ...
 *   rn_conv_params p = rn_conv_params_default(); p.pad[0] = p.pad[1] = 1;
 *   if (rn_conv2d(&y, x, w, NULL, &p) != RN_OK) fprintf(stderr, "%s\n", rn_last_error());
 *
 * Modules: status.h (errors), tensor.h (tensors and views), ops.h (differentiable ops), autograd.h,
 * rng.h, optim.h, backend.h (devices and kernels), npy.h; I/O: image.h, h5.h, safetensors.h; backbone.h; data: dataset.h, synth.h,
 * demo_data.h; metrics.h;
 * models: patchcore.h, rrs.h, diffusion.h.
 */
#ifndef REALNET_H
#define REALNET_H

#define REALNET_VERSION "0.1.0"

#include "status.h"
#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "rng.h"
#include "optim.h"
#include "backend.h"
#include "npy.h"
#include "image.h"
#include "h5.h"
#include "safetensors.h"
#include "backbone.h"
#include "metrics.h"
#include "dataset.h"
#include "synth.h"
#include "demo_data.h"
#include "patchcore.h"
#include "rrs.h"
#include "diffusion.h"

#endif
