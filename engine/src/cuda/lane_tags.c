/* lane_tags.c - the reuse rules of freed device blocks while work is forked over lanes (see lane_tags.h). */
#include <stdlib.h>

#include "lane_tags.h"

rn_status rn_lane_tags_fork(rn_lane_tags *t, int lanes) {
  if (t->lanes) return rn_error(RN_ERR_ARG, "cuda fork: a fork of %d lanes is in progress (join it first)", t->lanes);
  if (lanes < 2) return rn_error(RN_ERR_ARG, "cuda fork: %d lanes (a fork needs 2 or more)", lanes);
  t->lanes = lanes;
  t->current = 0;
  t->n = 0;
  return RN_OK;
}

rn_status rn_lane_tags_use(rn_lane_tags *t, int lane) {
  if (!t->lanes) return rn_error(RN_ERR_ARG, "cuda lane: no fork is in progress");
  if (lane < 0 || lane >= t->lanes)
    return rn_error(RN_ERR_ARG, "cuda lane: lane %d of a fork of %d lanes (0 .. %d)", lane, t->lanes, t->lanes - 1);
  t->current = lane;
  return RN_OK;
}

void rn_lane_tags_join(rn_lane_tags *t) {
  t->lanes = 0;
  t->current = 0;
  t->n = 0;
}

void rn_lane_tags_clear(rn_lane_tags *t) {
  free(t->notes);
  *t = (rn_lane_tags){0};
}

bool rn_lane_tags_may_take(const rn_lane_tags *t, int tag) {
  return tag == RN_LANE_ANY || (t->lanes && tag == t->current);
}

bool rn_lane_tags_note_alloc(rn_lane_tags *t, void *ptr) {
  if (!t->lanes) return true;
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 256;
    rn_lane_note *nn = realloc(t->notes, (size_t)cap * sizeof *nn);
    if (!nn) return false;
    t->notes = nn;
    t->cap = cap;
  }
  t->notes[t->n++] = (rn_lane_note){ptr, t->current};
  return true;
}

int rn_lane_tags_tag_for_free(rn_lane_tags *t, void *ptr) {
  if (!t->lanes) return RN_LANE_ANY;
  for (int i = t->n - 1; i >= 0; i--) /* recent blocks first: most tensors die young */
    if (t->notes[i].ptr == ptr) {
      int lane = t->notes[i].lane;
      t->notes[i] = t->notes[--t->n];
      return lane;
    }
  return RN_LANE_DEFERRED;
}
