/*
 * kt_group.h — device groups in tests without a network: a member admits a joiner as
 * kith_join would (spec/groups.md GRP-19), through the store's own calls.
 */
#ifndef KT_GROUP_H
#define KT_GROUP_H

#include "kith.h"

/* `member` (in a group) signs an ADD of `joiner`'s key named `name`, and `joiner` adopts the
 * group from the records member holds then. Fails the test on any error. */
void kt_admit(kith_replica *member, kith_replica *joiner, const char *name);

#endif
