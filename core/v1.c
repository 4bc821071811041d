/*
 * v1.c — the names of format 1. A commit of the first format names collections and fields by
 * number: the built-in CRM collections in order from 0, a collection's fields from 1
 * (spec/encoding.md "Format 1"). Such commits stay in logs for ever (their bytes are chained
 * and signed), so the decoder turns their numbers into names through this table, and the
 * store of a replica made by format 1 keeps these numbers as its local ones.
 */
#include "core.h"

#include <string.h>

#define N(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

const struct kith__name kith__v1_names[] = {
    N("contacts"),
    N("interactions"),
    N("reminders"),
    /* contacts 1..7 */
    N("name"),
    N("email"),
    N("phone"),
    N("company"),
    N("notes"),
    N("birthday"),
    N("tags"),
    /* interactions 1..5 */
    N("contact"),
    N("kind"),
    N("at"),
    N("summary"),
    N("participants"),
    /* reminders 1..4 */
    N("contact"),
    N("due"),
    N("text"),
    N("done"),
};

#undef N

static const unsigned first_field[3] = {3, 10, 15};
static const unsigned nfields[3] = {7, 5, 4};

int
kith__v1_field(unsigned coll, unsigned field)
{
    if (coll >= 3 || field < 1 || field > nfields[coll])
        return -1;
    return (int)(first_field[coll] + field - 1);
}

static bool
same(const struct kith__name *n, const char *name, size_t len)
{
    return n->len == len && memcmp(n->ptr, name, len) == 0;
}

int
kith__v1_coll_number(const char *name, size_t len)
{
    for (unsigned c = 0; c < 3; c++)
        if (same(&kith__v1_names[c], name, len))
            return (int)c;
    return -1;
}

int
kith__v1_field_number(unsigned coll, const char *name, size_t len)
{
    if (coll >= 3)
        return -1;
    for (unsigned f = 1; f <= nfields[coll]; f++)
        if (same(&kith__v1_names[first_field[coll] + f - 1], name, len))
            return (int)f;
    return -1;
}

const struct kith__v1_index kith__v1_indexes[3] = {
    {0, {"name", 4}},
    {1, {"contact", 7}},
    {2, {"due", 3}},
};
