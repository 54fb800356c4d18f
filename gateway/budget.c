#include "budget.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* glibc's header of an allocated chunk: the size word before what malloc returns. */
#define RG__CHUNK_HEADER sizeof(size_t)

size_t rg_budget_size(const void *p)
{
	return p ? malloc_usable_size((void *)p) + RG__CHUNK_HEADER : 0;
}

void rg_budget_charge(struct rg_budget *b, enum rg_mem k, void *p)
{
	if (b && p) {
		size_t n = rg_budget_size(p);
		b->used += n;
		b->by[k] += n;
	}
}

void rg_budget_release(struct rg_budget *b, enum rg_mem k, void *p)
{
	if (b && p) {
		size_t n = rg_budget_size(p);
		b->used -= n;
		b->by[k] -= n;
	}
}

void *rg_budget_malloc(struct rg_budget *b, enum rg_mem k, size_t n)
{
	void *p = malloc(n);
	rg_budget_charge(b, k, p);
	return p;
}

void *rg_budget_calloc(struct rg_budget *b, enum rg_mem k, size_t n, size_t size)
{
	void *p = calloc(n, size);
	rg_budget_charge(b, k, p);
	return p;
}

void *rg_budget_realloc(struct rg_budget *b, enum rg_mem k, void *p, size_t n)
{
	size_t old = rg_budget_size(p);
	void *q = realloc(p, n);

	if (q && b) { /* p is gone: it counted old */
		b->used -= old;
		b->by[k] -= old;
		rg_budget_charge(b, k, q);
	}
	return q;
}

char *rg_budget_strdup(struct rg_budget *b, enum rg_mem k, const char *s)
{
	char *p = strdup(s);
	rg_budget_charge(b, k, p);
	return p;
}

void rg_budget_free(struct rg_budget *b, enum rg_mem k, void *p)
{
	rg_budget_release(b, k, p);
	free(p);
}
