/*
 * Client input parsing: WebSocket client messages (docs/PROTOCOL.md) and HTTP publish
 * bodies. Pure functions of their input; every refusal comes with an error code and a
 * message for the client.
 */
#ifndef RG_REQUEST_H
#define RG_REQUEST_H

#include "config.h"
#include "cursor.h"
#include "errors.h"

#include <stddef.h>
#include <stdint.h>

#define RG_ID_MAX            64
#define RG_NAME_MAX          64
#define RG_HISTORY_LIMIT_MAX 1000

enum rg_req_type {
	RG_REQ_JOIN,
	RG_REQ_LEAVE,
	RG_REQ_PUBLISH,
	RG_REQ_PING,
	RG_REQ_HISTORY,
	RG_REQ_PRESENCE,
	RG_REQ_AUTH
};

struct rg_request {
	enum rg_req_type type;
	char id[RG_ID_MAX + 1]; /* "" when the client sent none */
	char room[RG_ROOM_NAME_MAX + 1];
	size_t room_len;
	/* publish: the data value, minified; auth: the token. Owned, see rg_request_clear() */
	char *data;
	size_t data_len;
	int64_t since;                /* join, history: -1 when absent */
	unsigned limit;               /* history: 0 when absent */
	char name[RG_NAME_MAX + 1];   /* join: presence name, "" when absent */
	char epoch[RG_EPOCH_MAX + 1]; /* join, history: since's epoch, "" when absent */
	enum rg_err err;              /* when parsing failed */
	const char *why;
};

/* Parses one complete text message. 0, or -1 with req->err and req->why set (and
 * req->id when the message carried a valid one). Call rg_request_clear() either way. */
int rg_request_parse(const char *text, size_t len, struct rg_request *req);
void rg_request_clear(struct rg_request *req);

/* Validates an HTTP body as one JSON value and minifies it into *out (malloc'd, owned
 * by the caller). 0, or -1 with *err and *why set. */
int rg_body_parse(const char *text, size_t len, char **out, size_t *out_len, enum rg_err *err,
		  const char **why);

/* Parses a decimal count of 1..19 digits, at most max: 0 and *out, or -1. */
int rg_count_parse(const char *s, size_t len, uint64_t max, uint64_t *out);

/* 1 if s (len bytes) is a valid id, name or idempotency key: 1..max bytes, no
 * control characters. */
int rg_token_valid(const char *s, size_t len, size_t max);

#endif
