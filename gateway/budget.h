/*
 * The memory budget (limits.memory_mb): what clients can make the gateway hold, counted
 * as it is allocated and freed: stored messages and the rings that hold them, rooms,
 * subscriptions, queued answers, stream ids and the buffers a message is reassembled
 * in. Pure bookkeeping: the registry decides what being over means (registry.h), the
 * transports refuse new work while it lasts.
 *
 * Counts follow what the allocator holds (malloc_usable_size plus its chunk header),
 * not what was asked for, so a budget of N bytes is close to N bytes of heap. What is
 * not counted is fixed per connection (lws's own state, TLS) and bounded by
 * limits.max_connections instead (docs/OPERATIONS.md, "Sizing").
 *
 * Every function takes a NULL budget as "not counted": pure modules (a room in a unit
 * test) work without one. What was charged is released with the same kind.
 */
#ifndef RG_BUDGET_H
#define RG_BUDGET_H

#include <stddef.h>
#include <stdint.h>

enum rg_mem {
	RG_MEM_MESSAGES, /* stored messages (both encodings, idempotency keys) */
	RG_MEM_ROOMS,    /* rooms, their names and rings */
	RG_MEM_SESSIONS, /* subscriptions, identities, stream ids, input buffers */
	RG_MEM_ANSWERS,  /* answers queued for a connection */
	RG_MEM_KINDS
};

struct rg_budget {
	uint64_t limit; /* bytes; 0: no limit */
	uint64_t used;
	uint64_t by[RG_MEM_KINDS];
};

/* Counts p, just allocated (NULL: nothing). */
void rg_budget_charge(struct rg_budget *b, enum rg_mem k, void *p);
/* Forgets p, about to be freed (NULL: nothing). */
void rg_budget_release(struct rg_budget *b, enum rg_mem k, void *p);

/* malloc, calloc, realloc, strdup and free that charge and release. */
void *rg_budget_malloc(struct rg_budget *b, enum rg_mem k, size_t n);
void *rg_budget_calloc(struct rg_budget *b, enum rg_mem k, size_t n, size_t size);
void *rg_budget_realloc(struct rg_budget *b, enum rg_mem k, void *p, size_t n);
char *rg_budget_strdup(struct rg_budget *b, enum rg_mem k, const char *s);
void rg_budget_free(struct rg_budget *b, enum rg_mem k, void *p);

/* What p counts for (0 for NULL). */
size_t rg_budget_size(const void *p);

/* 1 when the budget has a limit and is at or past it. */
static inline int rg_budget_over(const struct rg_budget *b)
{
	return b && b->limit && b->used >= b->limit;
}

#endif
