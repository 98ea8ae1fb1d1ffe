/* conv_fused_reference.h - what rn_conv2d_fused must equal: conv2d, add and the activation one after another
 * (tests/c/test_conv_fused.c on the CPU, tests/cuda/test_cuda_conv_fused.c on a GPU), and the activations the
 * epilogue takes. */
#ifndef REALNET_TEST_CONV_FUSED_REFERENCE_H
#define REALNET_TEST_CONV_FUSED_REFERENCE_H

#include "testutil.h"

static const rn_unary_op fused_acts[] = {RN_ACT_NONE, RN_UN_RELU, RN_UN_RELU6, RN_UN_SILU, RN_UN_SIGMOID};
static const char *fused_act_names[] = {"none", "relu", "relu6", "silu", "sigmoid"};
#define N_FUSED_ACTS ((int)(sizeof fused_acts / sizeof *fused_acts))

/* act(conv2d(x, w, b) + r) by the separate ops (r may be NULL, act RN_ACT_NONE). */
static inline rn_tensor *conv2d_separate(rn_tensor *x, rn_tensor *w, rn_tensor *b, rn_tensor *r, rn_unary_op act,
                                         const rn_conv_params *p) {
  rn_tensor *c = NULL, *s = NULL, *y = NULL;
  CHECK_OK(rn_conv2d(&c, x, w, b, p));
  if (r) CHECK_OK(rn_add(&s, c, r));
  else s = rn_tensor_retain(c);
  if (act != RN_ACT_NONE) CHECK_OK(rn_unary(&y, act, s, 0.0f, 0.0f));
  else y = rn_tensor_retain(s);
  rn_tensor_release(c);
  rn_tensor_release(s);
  return y;
}

#endif
