/* autograd.c - graph recording and reverse-mode traversal. */
#include "internal.h"

static _Thread_local bool grad_disabled; /* zero-initialised: grad mode on */

bool rn_grad_enabled(void) { return !grad_disabled; }

bool rn_set_grad_enabled(bool on) {
  bool prev = !grad_disabled;
  grad_disabled = !on;
  return prev;
}

rn_status rn_set_requires_grad(rn_tensor *t, bool on) {
  RN_TRY(rn_check_tensor(t, "requires_grad"));
  if (t->grad_fn) return rn_error(RN_ERR_ARG, "requires_grad can only be set on leaf tensors (this one was made by %s)",
                                  t->grad_fn->name);
  if (on && t->dtype != RN_F32) return rn_error(RN_ERR_ARG, "only float32 tensors can require grad, got %s",
                                                rn_dtype_name(t->dtype));
  t->requires_grad = on;
  return RN_OK;
}

static void node_free_saved(rn_node *n) {
  for (int i = 0; i < n->n_in; i++) rn_tensor_release(n->in[i]);
  free(n->in);
  n->in = NULL;
  n->n_in = 0;
  for (int i = 0; i < RN_NODE_MAX_SAVED; i++) { rn_tensor_release(n->saved[i]); n->saved[i] = NULL; }
  rn_tensor_release(n->grad);
  n->grad = NULL;
  n->released = true;
}

void rn_node_release(rn_node *n) {
  if (!n || --n->refcount > 0) return;
  /* Long chains would recurse deeply through in[] -> grad_fn; unlink iteratively where we can. */
  node_free_saved(n);
  free(n);
}

rn_node *rn_record(const char *name, rn_backward_fn bw, rn_tensor *out, int n_in, rn_tensor *const *in, rn_status *st) {
  *st = RN_OK;
  if (grad_disabled) return NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++) if (in[i] && in[i]->requires_grad) any = true;
  if (!any) return NULL;
  rn_node *n = calloc(1, sizeof *n);
  rn_tensor **ins = calloc((size_t)n_in, sizeof *ins);
  if (!n || !ins) {
    free(n); free(ins);
    *st = rn_error(RN_ERR_OOM, "out of memory recording %s", name);
    return NULL;
  }
  n->refcount = 1;
  n->name = name;
  n->backward = bw;
  n->n_in = n_in;
  n->in = ins;
  for (int i = 0; i < n_in; i++) ins[i] = rn_tensor_retain(in[i]);
  n->out_ndim = out->ndim;
  memcpy(n->out_shape, out->shape, sizeof n->out_shape);
  rn_node_release(out->grad_fn);
  out->grad_fn = n;
  out->requires_grad = true;
  return n;
}

rn_status rn_node_save(rn_node *n, int k, rn_tensor *t) {
  if (k < 0 || k >= RN_NODE_MAX_SAVED) return rn_error(RN_ERR_ARG, "%s: bad saved slot %d", n->name, k);
  rn_tensor *d = NULL;
  if (t) {
    d = calloc(1, sizeof *d);
    if (!d) return rn_error(RN_ERR_OOM, "out of memory saving a tensor for %s", n->name);
    *d = *t;
    d->refcount = 1;
    d->grad = NULL;
    d->grad_fn = NULL;
    d->requires_grad = false;
    d->storage->refcount++;
  }
  rn_tensor_release(n->saved[k]);
  n->saved[k] = d;
  return RN_OK;
}

bool rn_node_needs_grad(const rn_node *n, int i) {
  return i >= 0 && i < n->n_in && n->in[i] && n->in[i]->requires_grad;
}

void rn_zero_grad(rn_tensor *t) {
  if (!t) return;
  rn_tensor_release(t->grad);
  t->grad = NULL;
}

/* ------------------------------------------------------------------ backward */

typedef struct { rn_node **v; int n, cap; } node_list;

static rn_status list_push(node_list *l, rn_node *n) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    rn_node **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return rn_error(RN_ERR_OOM, "out of memory in backward");
    l->v = v; l->cap = cap;
  }
  l->v[l->n++] = n;
  return RN_OK;
}

/* Reverse topological order by an explicit-stack DFS (graphs can be thousands of nodes deep). */
static rn_status topo_sort(rn_node *root, node_list *order) {
  node_list stack = {0}, seen = {0};
  rn_status st = RN_OK;
  /* pending = 0 unvisited, 1 on stack, 2 done; reset afterwards to count incoming edges */
  root->pending = 1;
  if ((st = list_push(&stack, root)) != RN_OK) goto done;
  if ((st = list_push(&seen, root)) != RN_OK) goto done;
  while (stack.n) {
    rn_node *n = stack.v[stack.n - 1];
    bool pushed = false;
    for (int i = 0; i < n->n_in && !pushed; i++) {
      rn_node *c = n->in[i] ? n->in[i]->grad_fn : NULL;
      if (c && !c->released && c->pending == 0) {
        c->pending = 1;
        if ((st = list_push(&stack, c)) != RN_OK) goto done;
        if ((st = list_push(&seen, c)) != RN_OK) goto done;
        pushed = true;
      }
    }
    if (!pushed) {
      n->pending = 2;
      stack.n--;
      if ((st = list_push(order, n)) != RN_OK) goto done;
    }
  }
done:
  for (int i = 0; i < seen.n; i++) seen.v[i]->pending = 0;
  free(stack.v);
  free(seen.v);
  return st; /* order: children before parents; walk it from the end */
}

static rn_status accumulate(rn_tensor **slot, rn_tensor *g) {
  if (!*slot) { *slot = rn_tensor_retain(g); return RN_OK; }
  rn_tensor *sum = NULL;
  RN_TRY(rn_add(&sum, *slot, g));
  rn_tensor_release(*slot);
  *slot = sum;
  return RN_OK;
}

/* Gradients handed to a leaf must not alias storage that the graph may still write; copy when shared. */
static rn_status accumulate_leaf(rn_tensor *leaf, rn_tensor *g) {
  if (!leaf->grad) return rn_clone(&leaf->grad, g);
  return accumulate(&leaf->grad, g);
}

rn_status rn_backward(rn_tensor *root, rn_tensor *grad_root) {
  RN_TRY(rn_check_tensor(root, "backward"));
  if (!root->requires_grad)
    return rn_error(RN_ERR_ARG, "backward: the tensor does not require grad (no parameter contributed to it)");
  rn_tensor *g0 = NULL;
  if (grad_root) {
    if (!rn_tensor_same_shape(root, grad_root)) {
      char a[64], b[64];
      return rn_error(RN_ERR_SHAPE, "backward: gradient shape %s does not match tensor shape %s",
                      rn_shape_str(grad_root, a, 64), rn_shape_str(root, b, 64));
    }
    g0 = rn_tensor_retain(grad_root);
  } else {
    if (rn_tensor_numel(root) != 1) {
      char a[64];
      return rn_error(RN_ERR_SHAPE, "backward: implicit gradient needs a one-element tensor, got %s; pass a gradient",
                      rn_shape_str(root, a, 64));
    }
    RN_TRY(rn_tensor_full(&g0, root->ndim, root->shape, root->dtype, rn_tensor_device(root), 1.0));
  }
  rn_nograd_scope ng = rn_nograd_begin();
  rn_status st = RN_OK;
  if (!root->grad_fn) { /* a leaf */
    st = accumulate_leaf(root, g0);
    rn_tensor_release(g0);
    rn_nograd_end(ng);
    return st;
  }
  if (root->grad_fn->released) {
    rn_tensor_release(g0);
    rn_nograd_end(ng);
    return rn_error(RN_ERR_ARG, "backward: this graph was already differentiated and its saved tensors freed");
  }
  node_list order = {0};
  st = topo_sort(root->grad_fn, &order);
  /* hold every node: freeing one node's inputs below may drop the last reference to another */
  for (int k = 0; k < order.n; k++) order.v[k]->refcount++;
  if (st == RN_OK) {
    root->grad_fn->grad = g0;
    g0 = NULL;
  }
  for (int k = order.n - 1; k >= 0 && st == RN_OK; k--) {
    rn_node *n = order.v[k];
    if (!n->grad) continue; /* no path from the root carried a gradient here */
    rn_tensor *gin_stack[8] = {0};
    rn_tensor **gin = n->n_in <= 8 ? gin_stack : calloc((size_t)n->n_in, sizeof *gin);
    if (!gin) { st = rn_error(RN_ERR_OOM, "out of memory in backward"); break; }
    st = n->backward(n, n->grad, gin);
    for (int i = 0; i < n->n_in; i++) {
      rn_tensor *x = n->in[i];
      if (st == RN_OK && gin[i] && x && x->requires_grad) {
        if (!rn_tensor_same_shape(gin[i], x)) {
          char a[64], b[64];
          st = rn_error(RN_ERR_SHAPE, "internal: %s backward gave gradient %s for input %d of shape %s", n->name,
                        rn_shape_str(gin[i], a, 64), i + 1, rn_shape_str(x, b, 64));
        } else if (x->grad_fn) {
          st = accumulate(&x->grad_fn->grad, gin[i]);
        } else {
          st = accumulate_leaf(x, gin[i]);
        }
      }
      rn_tensor_release(gin[i]);
    }
    if (gin != gin_stack) free(gin);
    rn_tensor_release(n->grad);
    n->grad = NULL;
  }
  /* Free what the graph saved: intermediate activations are no longer needed. */
  for (int k = 0; k < order.n; k++) {
    rn_node *n = order.v[k];
    rn_tensor_release(n->grad);
    n->grad = NULL;
  }
  for (int k = 0; k < order.n; k++) node_free_saved(order.v[k]);
  for (int k = 0; k < order.n; k++) rn_node_release(order.v[k]);
  free(order.v);
  rn_tensor_release(g0);
  rn_nograd_end(ng);
  return st;
}
