/* bb_device.c - backbones on a device: moving the weights, and a forward that runs each node through the
 * device-independent op layer (convolutions with their bias, residual and activation in one epilogue, pooling,
 * concat), because the CPU forward in bb_forward.c reads and writes host memory directly. The op path is also
 * run on the CPU by the tests, so it is held to the CPU path's numbers there. */
#include "bb_internal.h"
#include "realnet/ops.h"

rn_status bb_params_to_device(rn_backbone *bb, rn_tensor **np, int n) {
  if (bb->device.type == RN_CPU) return RN_OK;
  rn_tensor **moved = calloc((size_t)n + 1, sizeof *moved);
  if (!moved) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  rn_status st = RN_OK;
  for (int i = 0; st == RN_OK && i < n; i++)
    if (np[i] && !rn_device_eq(np[i]->storage->device, bb->device)) st = rn_to_device(&moved[i], np[i], bb->device);
  for (int i = 0; i < n; i++) {
    if (!moved[i]) continue;
    if (st == RN_OK) {
      rn_tensor_release(np[i]);
      np[i] = moved[i];
    } else {
      rn_tensor_release(moved[i]);
    }
  }
  free(moved);
  return st;
}

rn_status rn_backbone_to_device(rn_backbone *bb, rn_device dev) {
  if (!bb) return rn_error(RN_ERR_ARG, "backbone to device: backbone is NULL");
  if (!rn_backend_for(dev)) return RN_ERR_DEVICE; /* the error names why (no CUDA build, no GPU, bad index) */
  if (rn_device_eq(bb->device, dev)) return RN_OK;
  /* random weights are drawn on the host, then moved like loaded ones */
  RN_TRY(bb_ensure_init(bb));
  rn_tensor **np = calloc((size_t)bb->n_param + 1, sizeof *np);
  if (!np) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  for (int i = 0; i < bb->n_param; i++) np[i] = rn_tensor_retain(bb->param[i].t);
  rn_device old = bb->device;
  bb->device = dev;
  rn_status st = RN_OK;
  if (dev.type == RN_CPU) { /* back to the host */
    for (int i = 0; st == RN_OK && i < bb->n_param; i++) {
      if (!np[i]) continue;
      rn_tensor *h = NULL;
      st = rn_to_device(&h, np[i], dev);
      if (st == RN_OK) {
        rn_tensor_release(np[i]);
        np[i] = h;
      }
    }
  } else {
    st = bb_params_to_device(bb, np, bb->n_param);
  }
  if (st == RN_OK) {
    bb_packed_free(bb); /* copies of the host weights being replaced */
    for (int i = 0; i < bb->n_param; i++) {
      rn_tensor_release(bb->param[i].t);
      bb->param[i].t = np[i];
    }
  } else {
    bb->device = old;
    for (int i = 0; i < bb->n_param; i++) rn_tensor_release(np[i]);
  }
  free(np);
  return st;
}

rn_device rn_backbone_device(const rn_backbone *bb) { return bb ? bb->device : rn_cpu(); }

/* ------------------------------------------------------------------ op-layer nodes */

static rn_status act_ops(rn_tensor **y, rn_tensor *x, bb_act a) {
  switch (a) {
    case ACT_RELU: return rn_unary(y, RN_UN_RELU, x, 0.f, 0.f);
    case ACT_RELU6: return rn_unary(y, RN_UN_RELU6, x, 0.f, 0.f);
    case ACT_SILU: return rn_unary(y, RN_UN_SILU, x, 0.f, 0.f);
    case ACT_SIGMOID: return rn_unary(y, RN_UN_SIGMOID, x, 0.f, 0.f);
    default: *y = rn_tensor_retain(x); return RN_OK;
  }
}

static rn_unary_op act_op(bb_act a) {
  switch (a) {
    case ACT_RELU: return RN_UN_RELU;
    case ACT_RELU6: return RN_UN_RELU6;
    case ACT_SILU: return RN_UN_SILU;
    case ACT_SIGMOID: return RN_UN_SIGMOID;
    default: return RN_ACT_NONE;
  }
}

static rn_status chan_view(rn_tensor **out, rn_tensor *v) {
  return rn_reshape(out, v, 4, (int64_t[]){1, v->shape[0], 1, 1});
}

static rn_status affine_ops(const rn_backbone *bb, const bb_node *nd, rn_tensor *x, rn_tensor **y) {
  const bb_unit *u = &bb->unit[nd->unit];
  rn_tensor *sc = NULL, *sh = NULL, *m = NULL, *s = NULL;
  rn_status st = chan_view(&sc, bb->param[u->w].t);
  if (st == RN_OK) st = chan_view(&sh, bb->param[u->b].t);
  if (st == RN_OK) st = rn_mul(&m, x, sc);
  if (st == RN_OK) st = rn_add(&s, m, sh);
  if (st == RN_OK) st = act_ops(y, s, nd->act);
  rn_tensor_release(sc);
  rn_tensor_release(sh);
  rn_tensor_release(m);
  rn_tensor_release(s);
  return st;
}

rn_status bb_run_node_ops(const rn_backbone *bb, const bb_node *nd, rn_tensor *a, rn_tensor *b, rn_tensor **y) {
  *y = NULL;
  switch (nd->op) {
    case OP_CONV: {
      const bb_unit *u = &bb->unit[nd->unit];
      rn_conv_params p = rn_conv_params_default();
      p.stride[0] = p.stride[1] = nd->stride;
      p.pad[0] = p.pad[1] = nd->pad;
      p.groups = nd->groups;
      /* bias, residual and activation in the convolution's epilogue (the separate ops when recording) */
      return rn_conv2d_fused(y, a, bb->param[u->w].t, u->b >= 0 ? bb->param[u->b].t : NULL, b, act_op(nd->act), &p);
    }
    case OP_AFFINE: return affine_ops(bb, nd, a, y);
    case OP_MAXPOOL: {
      rn_pool_params p = {{nd->k, nd->k}, {nd->stride, nd->stride}, {nd->pad, nd->pad}, nd->ceil_mode, false};
      return rn_max_pool2d(y, a, &p);
    }
    case OP_GAP: return rn_global_avg_pool(y, a);
    case OP_MUL: return rn_mul(y, a, b); /* gate [N,C,1,1] broadcasts over the plane */
    case OP_CONCAT: return rn_concat(y, 2, (rn_tensor *[]){a, b}, 1);
    case OP_FLATTEN: return rn_reshape(y, a, 2, (int64_t[]){a->shape[0], a->shape[1]});
  }
  return rn_error(RN_ERR_ARG, "backbone %s: unknown node op %d", bb->arch, (int)nd->op);
}
