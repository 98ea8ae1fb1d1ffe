/* autograd.h - reverse-mode differentiation over the graph that ops record.
 *
 *   rn_tensor *loss = ...;                 // built from tensors with requires_grad
 *   rn_backward(loss, NULL);               // grads land in leaf->grad
 *
 * Each op output that depends on a tensor requiring grad holds the node (grad_fn) that made it; a node holds
 * its inputs, so the graph lives as long as its outputs. rn_backward walks it once in reverse topological
 * order and then frees every node's saved tensors (a second backward through the same graph is an error).
 * Grad mode is thread-local: rn_grad_enabled / rn_set_grad_enabled (no-grad scopes nest by saving the old
 * value).
 */
#ifndef REALNET_AUTOGRAD_H
#define REALNET_AUTOGRAD_H

#include "tensor.h"

#define RN_NODE_MAX_SAVED 4
#define RN_NODE_MAX_IPARAMS 16
#define RN_NODE_MAX_FPARAMS 4

typedef struct rn_node rn_node;
/* Computes gradients of the node's inputs from `gout` (the gradient of its output). gin[i] is NULL on entry;
 * set it (a new reference) for inputs that need a gradient (rn_node_needs_grad); leave others NULL.
 * Runs with grad mode off. */
typedef rn_status (*rn_backward_fn)(rn_node *n, rn_tensor *gout, rn_tensor **gin);

struct rn_node {
  int refcount;
  const char *name;                      /* op name, for messages */
  rn_backward_fn backward;
  int n_in;
  rn_tensor **in;                        /* retained inputs */
  rn_tensor *saved[RN_NODE_MAX_SAVED];   /* detached extras (output, indices, statistics) */
  int64_t ip[RN_NODE_MAX_IPARAMS];       /* op parameters */
  double fp[RN_NODE_MAX_FPARAMS];
  int out_ndim;                          /* shape of the output, to check incoming grads */
  int64_t out_shape[RN_MAX_DIMS];
  rn_tensor *grad;                       /* gradient accumulated for the output during backward */
  int pending;                           /* backward bookkeeping */
  bool released;                         /* saved tensors were freed by a backward */
};

bool rn_grad_enabled(void);
bool rn_set_grad_enabled(bool on); /* returns the previous value */

/* Marks a tensor as a leaf whose gradient is wanted. */
rn_status rn_set_requires_grad(rn_tensor *t, bool on);

/* Called by ops after computing `out`: when grad mode is on and an input requires grad, creates a node,
 * attaches it to out (out->grad_fn, out->requires_grad) and returns it (borrowed) so the op can store
 * params and saved tensors. Returns NULL when nothing is recorded; *st reports allocation failure. */
rn_node *rn_record(const char *name, rn_backward_fn bw, rn_tensor *out, int n_in, rn_tensor *const *in,
                   rn_status *st);
/* Saves a detached alias of t (shares storage, no graph edge) in slot k. */
rn_status rn_node_save(rn_node *n, int k, rn_tensor *t);
/* Whether input i needs a gradient. */
bool rn_node_needs_grad(const rn_node *n, int i);

void rn_node_release(rn_node *n);

/* Backpropagates from `root`. grad_root NULL means ones (root must then have one element). */
rn_status rn_backward(rn_tensor *root, rn_tensor *grad_root);
/* Frees and clears t->grad. */
void rn_zero_grad(rn_tensor *t);

#endif
